"""The model description every part of bpcheck reads, parameter naming, and input validation.

A network maps F input features through hidden layers to C outputs::

    sizes = (F, H_1, ..., H_{L-1}, C),  activations = (σ_1, ..., σ_L)

Bias styles
    ``node``   the seed's bias node: a row of ones is appended to every layer's input, so
               ``W_k`` has shape ``(sizes[k], sizes[k-1] + 1)`` and there are no bias vectors.
    ``vector`` separate bias vectors: ``W_k`` has shape ``(sizes[k], sizes[k-1])`` and
               ``b_k`` has shape ``(sizes[k],)``.

Layouts (data only; parameter shapes do not depend on the layout)
    ``cols``   samples are columns: ``X`` is ``(F, N)``, targets ``(C, N)`` — the seed's.
    ``rows``   samples are rows: ``X`` is ``(N, F)``, targets ``(N, C)`` — torch's.

Penalty
    ``l2``        λ of λ/2 Σ_k ‖W_k‖² over the weights alone (no bias column or vector).
    ``l2_biases`` when true, the penalty covers the biases too: a bias node's column of W_k,
                  or λ/2 Σ_k ‖b_k‖² for bias vectors.

The names themselves, one record each, are declared in ``manual/vocabulary.py``; the math of
each name lives in ``manual/`` and, independently, in every witness under ``reference/``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from manual.stack import ACTIVATION, PADDING, Layer, Stack, layers_of, stride, walk
from manual.vocabulary import (
    ACTIVATIONS,
    DTYPES,
    LOSSES,
    PROBABILITY_TARGETS,
    REDUCTIONS,
    Array,
    one_of,
    parse_activation,
)

#: Re-exported: the names and their parsing from the vocabulary (one record per name), and the
#: description of networks of layers from manual/stack.py (its layer records in
#: layer_kinds.py, its text form in stack_text.py), so that every witness reads the model
#: description — of an MLP or of layers — from this module alone.
LAYER_DESCRIPTION = ("ACTIVATION", "PADDING", "Layer", "Stack", "layers_of", "stride", "walk")
__all__ = ["ACTIVATION", "ACTIVATIONS", "DTYPES", "LOSSES", "PADDING", "REDUCTIONS", "Array", "Layer",
           "Stack", "layers_of", "one_of", "parse_activation", "stride", "walk"]

BIAS_STYLES: tuple[str, ...] = ("node", "vector")
LAYOUTS: tuple[str, ...] = ("cols", "rows")

Params = dict[str, np.ndarray]


def target_kind(loss: str) -> str:
    """What a loss's targets are: ``values``, ``probabilities`` or ``labels``."""
    return LOSSES[loss].targets


def takes_probabilities(loss: str) -> bool:
    """Whether a loss takes the output as probabilities (so the output must stay in [0, 1])."""
    return bool(LOSSES[loss].probability_outputs)


def is_real(value: Any) -> bool:
    """A real number, Python or NumPy, not a bool."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _penalty(l2: Any) -> float:
    """λ as a float: a finite real number >= 0 (Python or NumPy; not a bool)."""
    real = is_real(l2)
    if not real or not (np.isfinite(l2) and l2 >= 0):
        raise ValueError(f"l2={l2!r} must be a finite number >= 0")
    return float(l2)


@dataclass(frozen=True)
class Spec:
    """A multilayer perceptron: layer widths, one activation per layer, loss, conventions."""

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str = "half-sse"
    reduction: str = "sum"
    bias: str = "node"
    layout: str = "cols"
    dtype: str = "float64"
    l2: float = 0.0  # λ of the penalty λ/2 Σ_k ‖W_k‖² (weights only: no bias vector or column)
    l2_biases: bool = False  # the penalty covers the biases too: + λ/2 Σ_k ‖b_k‖² (or bias column)

    def __post_init__(self) -> None:
        for field_name, what in (("sizes", "layer widths (F, H…, C)"), ("activations", "names")):
            value = getattr(self, field_name)
            if isinstance(value, str) or not isinstance(value, Iterable):
                raise TypeError(f"{field_name}={value!r:.80} must be a tuple of {what}")
        object.__setattr__(self, "sizes", tuple(self.sizes))
        object.__setattr__(self, "activations", tuple(self.activations))
        if len(self.sizes) < 2:
            raise ValueError(f"sizes={self.sizes} needs at least (inputs, outputs)")
        for i, width in enumerate(self.sizes):
            if isinstance(width, bool) or not isinstance(width, int | np.integer):
                raise TypeError(f"sizes[{i}]={width!r} must be an int")
            if width < 1:
                raise ValueError(f"sizes[{i}]={width}: every layer needs width >= 1")
        if len(self.activations) != self.depth:
            raise ValueError(
                f"activations has {len(self.activations)} name{'s' * (len(self.activations) != 1)}; "
                f"sizes={self.sizes} has {self.depth} layer{'s' * (self.depth != 1)}, so expected "
                f"{self.depth}"
            )
        for i, name in enumerate(self.activations):
            base, _ = parse_activation(name, f"activations[{i}]")
            if ACTIVATIONS[base].output_only and i != self.depth - 1:
                raise ValueError(f"activations[{i}]={name!r}: {base} is allowed only at the output "
                                 f"layer (activations[{self.depth - 1}])")
        one_of(self.loss, LOSSES, "loss")
        output, takes = parse_activation(self.activations[-1])[0], LOSSES[self.loss].probability_outputs
        if takes and output not in takes:
            raise ValueError(f"loss={self.loss!r} takes probabilities: the output activation must be "
                             f"one of {list(takes)}, not {output!r}")
        object.__setattr__(self, "l2", _penalty(self.l2))
        if not isinstance(self.l2_biases, bool | np.bool_):
            raise TypeError(f"l2_biases={self.l2_biases!r} must be a bool")
        object.__setattr__(self, "l2_biases", bool(self.l2_biases))
        one_of(self.reduction, REDUCTIONS, "reduction")
        one_of(self.bias, BIAS_STYLES, "bias")
        one_of(self.layout, LAYOUTS, "layout")
        one_of(self.dtype, DTYPES, "dtype")

    @property
    def depth(self) -> int:
        """Number of weight layers L (the seed's network has L = 2)."""
        return len(self.sizes) - 1

    def replace(self, **changes: Any) -> Spec:
        """A copy with some fields changed (and validated again)."""
        return dataclasses.replace(self, **changes)


def param_shapes(spec: Spec) -> dict[str, tuple[int, ...]]:
    """Parameter name → shape, in layer order: ``W1, (b1,) W2, (b2,) …``."""
    node = 1 if spec.bias == "node" else 0
    shapes: dict[str, tuple[int, ...]] = {}
    for k in range(1, spec.depth + 1):
        shapes[f"W{k}"] = (spec.sizes[k], spec.sizes[k - 1] + node)
        if spec.bias == "vector":
            shapes[f"b{k}"] = (spec.sizes[k],)
    return shapes


def data_shape(spec: Spec, width: int, n_samples: int | str = "N") -> tuple:
    """Shape of a data array with ``width`` features per sample in the spec's layout."""
    return (width, n_samples) if spec.layout == "cols" else (n_samples, width)


def n_samples(spec: Spec, X: np.ndarray) -> int:
    """Batch size N of an input array in the spec's layout."""
    return X.shape[1] if spec.layout == "cols" else X.shape[0]


def format_shape(shape: tuple) -> str:
    """``(4, 'N')`` → ``(4, N)``."""
    return "(" + ", ".join(str(dim) for dim in shape) + ("," if len(shape) == 1 else "") + ")"


def _check_array(value: Any, argument: str, dtype: np.dtype, shape: tuple) -> np.ndarray:
    """Return ``value`` as an array after checking dtype, exact shape and finiteness.

    ``shape`` may contain the string ``"N"`` for a free (but non-zero) batch dimension.
    """
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"{argument} has dtype {array.dtype}; expected real {dtype}")
    if array.dtype != dtype:
        raise TypeError(f"{argument} has dtype {array.dtype}; the spec asks for {dtype}")
    if array.ndim != len(shape) or any(
        expected != "N" and got != expected for got, expected in zip(array.shape, shape, strict=True)
    ):
        raise ValueError(f"{argument} has shape {format_shape(array.shape)}; "
                         f"expected {format_shape(shape)}")
    if "N" in shape and array.shape[shape.index("N")] == 0:
        raise ValueError(f"{argument} has shape {format_shape(array.shape)}: the batch is empty "
                         f"(N = 0); expected {format_shape(shape)} with N >= 1")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{argument} contains NaN or Inf; expected finite values")
    return array


def check_params(spec: Spec, params: Params) -> Params:
    """Validate a parameter dict against the spec; return it unchanged (no copies)."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
    shapes = param_shapes(spec)
    missing, extra = shapes.keys() - params.keys(), params.keys() - shapes.keys()
    if missing or extra:
        raise ValueError(
            f"params has keys {sorted(params)}; expected {list(shapes)} "
            f"(missing {sorted(missing)}, unexpected {sorted(extra)})"
        )
    dtype = np.dtype(spec.dtype)
    return {name: _check_array(params[name], f"params[{name!r}]", dtype, shapes[name])
            for name in shapes}


def check_data(spec: Spec, X: Any, Y: Any | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate inputs ``X`` and (optional) targets ``Y``; shapes must match exactly.

    A target of shape ``(C,)`` — which NumPy would silently broadcast against ``(C, N)`` — is
    an error, as is any batch-size mismatch between ``X`` and ``Y``.
    """
    dtype = np.dtype(spec.dtype)
    X = _check_array(X, "X", dtype, data_shape(spec, spec.sizes[0]))
    if Y is None:
        return X, None
    n, classes, targets = n_samples(spec, X), spec.sizes[-1], LOSSES[spec.loss].targets
    if targets == "labels":
        return X, _check_labels(Y, spec.loss, classes, n)
    Y = _check_array(Y, "Y", dtype, data_shape(spec, classes, n))
    if targets in PROBABILITY_TARGETS and (np.min(Y) < 0 or np.max(Y) > 1):
        raise ValueError(f"Y has values in [{np.min(Y):g}, {np.max(Y):g}]; loss={spec.loss!r} "
                         f"expects probabilities in [0, 1]")
    sums = np.sum(Y, axis=0 if spec.layout == "cols" else -1, dtype=np.float64)
    if targets == "one_hot" and not (np.all((Y == 0) | (Y == 1)) and np.all(sums == 1)):
        raise ValueError(f"Y is not one-hot: loss={spec.loss!r} expects a single 1 per sample, "
                         "the other entries 0")
    tolerance = classes * np.finfo(dtype).eps
    if targets == "distributions" and np.max(np.abs(sums - 1), initial=0.0) > tolerance:
        raise ValueError(f"Y's samples sum to {np.min(sums):g}…{np.max(sums):g}; loss={spec.loss!r} "
                         "expects distributions, each sample's targets summing to one")
    return X, Y


def _check_labels(Y: Any, loss: str, classes: int, n: int, argument: str = "Y") -> np.ndarray:
    """Class labels: integers in [0, C), exactly one per sample, shape (N,)."""
    Y = np.asarray(Y)
    if not np.issubdtype(Y.dtype, np.integer):
        raise TypeError(f"{argument} has dtype {Y.dtype}; loss={loss!r} expects integer class labels "
                        f"of shape ({n},)")
    if Y.shape != (n,):
        raise ValueError(f"{argument} has shape {format_shape(Y.shape)}; loss={loss!r} expects class labels "
                         f"of shape ({n},)")
    if np.min(Y) < 0 or np.max(Y) >= classes:
        raise ValueError(f"{argument} has labels in [{np.min(Y)}, {np.max(Y)}]; expected classes in "
                         f"[0, {classes - 1}]")
    return Y


def check_learning_rate(lr: Any) -> float:
    """A learning rate must be a finite, non-negative real number."""
    if isinstance(lr, bool) or not isinstance(lr, int | float | np.floating | np.integer):
        raise TypeError(f"lr={lr!r} must be a real number")
    if not np.isfinite(lr) or lr < 0:
        raise ValueError(f"lr={lr!r} must be finite and >= 0")
    return float(lr)


def check_problem(
    spec: Spec, params: Params, X: Any, Y: Any
) -> tuple[Params, np.ndarray, np.ndarray]:
    """Validate everything one gradient evaluation needs: targets ``Y`` are required."""
    if Y is None:
        shape = ("N",) if LOSSES[spec.loss].targets == "labels" else data_shape(spec, spec.sizes[-1])
        raise TypeError(f"Y is None; loss={spec.loss!r} needs targets of shape {format_shape(shape)}")
    params = check_params(spec, params)
    X, Y = check_data(spec, X, Y)
    return params, X, Y
