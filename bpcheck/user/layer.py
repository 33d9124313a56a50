"""Your own layer: a cs231n pair — ``forward(x, params) → (out, cache)`` and
``backward(dout, cache) → (dx, grads)`` in NumPy — with its forward written in torch and in jax,
so that the witnesses can differentiate it. Declared as a ``UserLayer``, it joins the layer kinds
under its name while a check runs (``with REGISTRY.scoped(layer)``, ``bpcheck.user.registry``), and
``bpcheck.user.layer_check`` checks it alone and inside random networks. Each call of its code is
guarded as an activation's is (``bpcheck.user.guards.guard``): stopped at the time limit, and what
it raises or wrongly returns is a ``UserCodeError`` naming the part.

::

    scale_shift = UserLayer(
        "scale_shift", forward, backward,
        torch=lambda x, p: x * p["gamma"][:, None, None] + p["beta"][:, None, None],
        jax=lambda x, p: x * p["gamma"][:, None, None] + p["beta"][:, None, None],
        parameters={"gamma": lambda shape: shape[:1], "beta": lambda shape: shape[:1]},
        rank=3)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from bpcheck.core.user_code import nan_problem, result_problem
from bpcheck.user.guards import guard
from manual.layer_kinds import ACTIVATION, LAYER_KINDS, Layer, LayerKind
from manual.spec import ACTIVATIONS

Shape = tuple[int, ...]


@dataclass(frozen=True)
class UserLayer:
    """A layer of yours. ``parameters`` maps each parameter's name to its shape as a function of
    one sample's input shape ((C, H, W), (F,) or (T, D)); ``output_shape`` gives one sample's output
    shape (default: the input's); ``rank`` is 3 for (C, H, W) samples only, 2 for sequences
    (T, D) only (drawn alone, or after dense at every step under a per-step loss), 1 for (F,)
    only, None for (C, H, W) or (F,); ``kinks`` are input values where it has no derivative (draws keep away
    from them, as for activations); ``fits(shape)`` says which sample shapes it takes (a
    2-group norm: an even C), the others are not drawn. Arrays are NCHW (or N × F), as in
    ``manual.stack``; the torch and jax forwards take ``(x, params)`` of their own arrays and
    return their own array."""

    kind: ClassVar[str] = "layer"  # its tables in ``bpcheck.user.registry.REGISTRY``
    name: str
    forward: Callable
    backward: Callable
    torch: Callable
    jax: Callable
    parameters: dict[str, Callable[[Shape], Shape]] = field(default_factory=dict)
    output_shape: Callable[[Shape], Shape] | None = None
    rank: int | None = None
    kinks: tuple[float, ...] = ()  # input values where the layer has no derivative (a PReLU's 0)
    fits: Callable[[Shape], bool] | None = None  # the sample shapes it takes (None: every one)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"name={self.name!r}: a layer's name is an identifier (letters, digits, _)")
        built_in = self.name in LAYER_KINDS and LAYER_KINDS[self.name].output_shape is None
        if built_in or self.name in ACTIVATIONS or self.name == ACTIVATION:
            raise ValueError(f"name={self.name!r} is a built-in layer or activation; choose another")
        for part in ("forward", "backward", "torch", "jax"):
            if not callable(getattr(self, part)):
                raise TypeError(f"{part}={getattr(self, part)!r} must be callable")
        if not isinstance(self.parameters, dict) or not all(
                isinstance(k, str) and callable(v) for k, v in self.parameters.items()):
            raise TypeError("parameters must map each parameter's name to a function of the input "
                            "shape giving its shape, e.g. {'gamma': lambda shape: shape[:1]}")
        if not isinstance(self.kinks, tuple) or not all(isinstance(k, int | float) for k in self.kinks):
            raise TypeError(f"kinks={self.kinks!r} must be a tuple of numbers, e.g. (0.0,)")
        if self.fits is not None and not callable(self.fits):
            raise TypeError(f"fits={self.fits!r} must be a function of one sample's shape, or None")
        if self.rank not in (None, 1, 2, 3):
            raise ValueError(f"rank={self.rank!r}: expected 3 ((C, H, W) samples), 2 ((T, D) "
                             "sequences), 1 ((F,)) or None")

    def layer_kind(self) -> LayerKind:
        """The layer kind this layer joins ``manual.stack`` as; its shape functions guarded."""
        def shapes(shape: Shape) -> dict[str, Shape]:
            return {name: _shape(self.name, f"parameters[{name!r}]", f, shape)
                    for name, f in self.parameters.items()}

        def output(shape: Shape) -> Shape:
            return shape if self.output_shape is None else _shape(self.name, "output_shape",
                                                                   self.output_shape, shape)

        return LayerKind(self.name, self.name, parameters=tuple(self.parameters), rank=self.rank,
                         parameter_shapes=shapes if self.parameters else None, output_shape=output,
                         kinks=self.kinks)

    def entries(self) -> dict[str, object]:
        """What it puts in each table of ``REGISTRY``: its kind, its guarded pair (the derived
        rule's), its guarded torch and jax forwards (the witnesses') and its text in the
        strategies' draws (its name: it takes no options)."""
        return {"kinds": self.layer_kind(), "pairs": self.pair(),
                "torch": _witness_forward(self, "torch"), "jax": _witness_forward(self, "jax"),
                "texts": lambda draw, shape: self.name}

    def fits_shape(self, shape: Shape) -> bool:
        """Whether its ``fits`` (guarded) takes samples of ``shape``; True without one."""
        return self.fits is None or bool(guard(self.name, "fits", self.fits)(shape))

    def pair(self) -> tuple[Callable, Callable]:
        """(forward, backward) in the engine's form, each call guarded (``guard``): what the
        user's code raises or wrongly returns (a wrong shape or dtype included) is a
        ``UserCodeError`` naming the part."""
        output_shape = self.layer_kind().output_shape

        def forward(x: np.ndarray, params: dict, layer: Layer) -> tuple[np.ndarray, object]:
            copies = {k: v.copy() for k, v in params.items()}  # the user's code cannot change ours
            expect = _forward_result((x.shape[0], *output_shape(x.shape[1:])), x.dtype, (x, *params.values()))
            out = guard(self.name, "forward", self.forward, expect)(x.copy(), copies)
            return np.asarray(out[0]), (out[1], params, x.shape, x.dtype)

        def backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, dict]:
            own_cache, params, shape, dtype = cache
            expect = _backward_result(params, shape, dtype, (dout, *params.values()))
            dx, grads = guard(self.name, "backward", self.backward, expect)(dout.copy(), own_cache)
            return np.asarray(dx), {name: np.asarray(g) for name, g in grads.items()}

        return forward, backward


def _shape(layer: str, part: str, function: Callable, shape: Shape) -> Shape:
    """What a user's shape function gives (guarded), as a tuple of positive ints."""
    def expect(args: tuple, value) -> str | None:
        if isinstance(value, tuple | list) and all(isinstance(d, int | np.integer) and d >= 1 for d in value):
            return None
        return f"{part} gave {value!r} for a sample of shape {shape}; expected a tuple of positive ints"

    return tuple(int(d) for d in guard(layer, part, function, expect)(shape))


def _arrays_problem(arrays: list[tuple[str, object, Shape, str]], dtype: np.dtype,
                    inputs: tuple) -> str | None:
    """"WHAT: what is wrong" for the first of ``arrays`` (what, value, shape, whose shape) that
    is not an ndarray of its shape and ``dtype`` (``result_problem``), else for the first with a
    NaN where no input has one (``nan_problem``); None when all are right."""
    for what, value, shape, like in arrays:
        wrong = result_problem(value, tuple(shape), dtype, like)
        if wrong is not None:
            return f"{what}: {wrong}"
    for what, value, _, _ in arrays:
        wrong = nan_problem(value, inputs)
        if wrong is not None:
            return f"{what}: {wrong}"
    return None


def _forward_result(shape: Shape, dtype: np.dtype, inputs: tuple) -> Callable[[tuple, object], str | None]:
    """The forward's result: (out, cache), out an array of ``shape`` and the input's dtype."""
    def expect(args: tuple, result) -> str | None:
        if not (isinstance(result, tuple) and len(result) == 2):
            return f"forward returned {type(result).__name__}; expected (out, cache)"
        return _arrays_problem([("forward's out", result[0], shape, "the output's")], dtype, inputs)

    return expect


def _backward_result(params: dict, shape: Shape, dtype: np.dtype,
                     inputs: tuple) -> Callable[[tuple, object], str | None]:
    """The backward's result: (dx, grads), dx like x, grads a dict with each parameter's
    gradient, like it; all of the input's dtype."""
    def expect(args: tuple, result) -> str | None:
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
            return f"backward returned {type(result).__name__}; expected (dx, grads), grads a dict"
        dx, grads = result
        if set(grads) != set(params):
            return f"backward's grads have keys {sorted(grads)}; expected {sorted(params)}"
        return _arrays_problem([("backward's dx", dx, shape, "x's")] + [
            (f"backward's grads[{name!r}]", g, params[name].shape, f"params[{name!r}]'s")
            for name, g in grads.items()], dtype, inputs)

    return expect


def _witness_forward(layer: UserLayer, part: str) -> Callable:
    """The user's torch or jax forward, guarded: an output of the wrong type or shape is a
    ``UserCodeError`` naming it too."""
    kind = "torch.Tensor" if part == "torch" else "jax array"
    modules = ("torch",) if part == "torch" else ("jax", "jaxlib")
    output_shape = layer.layer_kind().output_shape

    def expect(args: tuple, out) -> str | None:
        if type(out).__module__.split(".")[0] not in modules:
            return f"your {part} forward returned {type(out).__name__}; expected a {kind}"
        if tuple(out.shape[1:]) != output_shape(tuple(args[0].shape[1:])):
            return f"your {part} forward's out has shape {tuple(out.shape)}"
        return None

    return guard(layer.name, part, getattr(layer, part), expect)
