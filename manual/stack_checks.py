"""Input validation for networks of layers (``manual.stack``): every error names its argument
and comes before any work."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from manual.spec import Array, _check_array, _check_labels, format_shape
from manual.stack import PADDING, Stack, buffer_shapes, layer_inputs, mask_shapes, param_shapes


def _named(values: Any, expected: dict[str, tuple], argument: str, dtype: np.dtype) -> dict[str, Array]:
    if not isinstance(values, dict):
        raise TypeError(f"{argument} must be a dict of arrays, got {type(values).__name__}")
    missing, extra = expected.keys() - values.keys(), values.keys() - expected.keys()
    if missing or extra:
        raise ValueError(f"{argument} has keys {sorted(values)}; expected {list(expected)} "
                         f"(missing {sorted(missing)}, unexpected {sorted(extra)})")
    return {name: _check_array(values[name], f"{argument}[{name!r}]", dtype, expected[name])
            for name in expected}


def check_masks(stack: Stack, masks: Any, n: int) -> dict[str, Array]:
    """One 0/1 mask per dropout layer, of its input's shape for this batch, and the per-step
    loss's padding (all 1 when left out)."""
    expected = mask_shapes(stack, n)
    dropout = [name for name in expected if name != PADDING]
    if masks is None and dropout:
        raise TypeError(f"masks is None; the network's dropout layers need masks {dropout}")
    if PADDING in expected and (masks is None or (isinstance(masks, dict) and PADDING not in masks)):
        masks = (masks or {}) | {PADDING: np.ones(expected[PADDING])}  # every step is real
    masks = {} if masks is None else masks
    if not isinstance(masks, dict) or masks.keys() != expected.keys():
        raise ValueError(f"masks has keys {sorted(masks) if isinstance(masks, dict) else masks!r}; "
                         f"expected {list(expected)}")
    checked = {}
    for name, shape in expected.items():
        mask = np.asarray(masks[name])
        if mask.shape != shape:
            raise ValueError(f"masks[{name!r}] has shape {format_shape(mask.shape)}; expected "
                             f"{format_shape(shape)}")
        if not np.all((mask == 0) | (mask == 1)):
            raise ValueError(f"masks[{name!r}] must hold only 0 and 1 (1 "
                             + ("marks a real step)" if name == PADDING else "keeps a unit)"))
        checked[name] = mask
    if PADDING in checked and not np.any(checked[PADDING]):
        raise ValueError(f"masks[{PADDING!r}] is all 0: every step is padding, so there is no loss")
    return checked


def check_tokens(stack: Stack, x: Any) -> Array:
    """Integer tokens (N, T) with values in [0, V)."""
    x = np.asarray(x)
    steps, vocab = stack.input_shape[0], stack.layers[0].vocab
    if not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"x has dtype {x.dtype}; {stack.layers[0]} (embedding) expects integer "
                        f"tokens of shape (N, {steps})")
    if x.ndim != 2 or x.shape[1] != steps or x.shape[0] == 0:
        raise ValueError(f"x has shape {format_shape(x.shape)}; expected tokens (N, {steps}) with N >= 1")
    if np.min(x) < 0 or np.max(x) >= vocab:
        raise ValueError(f"x has tokens in [{np.min(x)}, {np.max(x)}]; {stack.layers[0]} has a "
                         f"vocabulary of {vocab}: expected [0, {vocab - 1}]")
    return x


def check_targets(stack: Stack, y: Any, n: int) -> Array:
    """Labels (N,) or values (N, C); at every step, labels (N, T) or values (N, T, C)."""
    if y is None:
        raise TypeError(f"y is None; loss={stack.loss!r} needs targets")
    dtype = np.dtype(stack.dtype)
    if stack.per_step:
        steps = stack.shapes[-1][0]
        if stack.targets != "labels":
            return _check_probabilities(stack, _check_array(y, "y", dtype, (n, steps, stack.classes)))
        y = np.asarray(y)
        if not np.issubdtype(y.dtype, np.integer) or y.shape != (n, steps):
            raise (ValueError if np.issubdtype(y.dtype, np.integer) else TypeError)(
                f"y has shape {format_shape(y.shape)} and dtype {y.dtype}; loss={stack.loss!r} at "
                f"every step expects integer labels of shape ({n}, {steps}), a class in [0, C) at "
                "padded steps too (any: they count nowhere)")
        return _check_labels(y.reshape(-1), stack.loss, stack.classes, n * steps, "y").reshape(n, steps)
    if stack.targets == "labels":
        return _check_labels(y, stack.loss, stack.classes, n, "y")
    return _check_probabilities(stack, _check_array(y, "y", dtype, (n, stack.classes)))


def _check_probabilities(stack: Stack, y: Array) -> Array:
    if stack.targets == "probabilities" and (np.min(y) < 0 or np.max(y) > 1):
        raise ValueError(f"y has values in [{np.min(y):g}, {np.max(y):g}]; loss={stack.loss!r} "
                         "expects probabilities in [0, 1]")
    return y


def check_batch_norm_counts(stack: Stack, n: int) -> None:
    """Batch norm in training mode needs M ≥ 2 values per channel: one has no variance."""
    for layer, shape in layer_inputs(stack):
        count = n * int(np.prod(shape[1:]))
        if layer.kind == "batch_norm" and count < 2:
            raise ValueError(f"x has {n} sample{'s' * (n != 1)}: {layer} (batch_norm) would "
                             f"normalise {count} value per channel, which has no variance; "
                             "training mode needs at least 2 (a batch of 2, or a spatial input)")


def check_stack_problem(stack: Stack, params: Any, x: Any, y: Any, masks: Any = None,
                        buffers: Any = None) -> tuple[dict[str, Array], Array, Array, dict[str, Array]]:
    """Validated (params, x, y, masks); ``buffers`` too when given (running statistics)."""
    if not isinstance(stack, Stack):
        raise TypeError(f"stack must be a Stack, got {type(stack).__name__}")
    dtype = np.dtype(stack.dtype)
    params = _named(params, param_shapes(stack), "params", dtype)
    if buffers is not None:
        _named(buffers, buffer_shapes(stack), "buffers", dtype)
    x = check_tokens(stack, x) if stack.tokens else _check_array(x, "x", dtype, ("N", *stack.input_shape))
    n = x.shape[0]
    y = check_targets(stack, y, n)
    check_batch_norm_counts(stack, n)
    return params, x, y, check_masks(stack, masks, n)


#: ``memory_bound``'s copies: the manual rule and each witness (torch, JAX, finite differences)
#: hold the values and their gradients (×2) — 4 × 2, a rough bound, not a measurement.
MEMORY_COPIES = 8


def memory_bound(stack: Stack, n: int) -> int:
    """A rough bound on the bytes a check or a training step of ``stack`` on a batch of ``n``
    holds: 8 bytes (float64, the witnesses' dtype) × MEMORY_COPIES × (P + n·A), with P the
    parameter entries and A each layer's input entries per sample, plus attention's heads·T²
    scores and a recurrent layer's gates·T·width. Python integers: it cannot overflow."""
    P = sum(math.prod(shape) for shape in param_shapes(stack).values())
    A = math.prod(stack.shapes[-1])
    for layer, shape in layer_inputs(stack):
        A += math.prod(shape)
        if layer.kind == "attention":
            A += layer.heads * shape[0] ** 2
        elif layer.kind in ("rnn", "lstm", "gru"):
            A += 4 * shape[0] * layer.width  # at most 4 gates (lstm)
    return 8 * MEMORY_COPIES * (P + n * A)
