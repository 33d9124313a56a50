"""Your own layer: a cs231n pair — ``forward(x, params) → (out, cache)`` and
``backward(dout, cache) → (dx, grads)`` in NumPy — with its forward written in torch and in jax,
so that the witnesses can differentiate it. Declared as a ``UserLayer``, it joins the layer kinds
under its name while a check runs (``registered``), and ``bpcheck.user.layer_check`` checks it alone
and inside random networks.

::

    scale_shift = UserLayer(
        "scale_shift", forward, backward,
        torch=lambda x, p: x * p["gamma"][:, None, None] + p["beta"][:, None, None],
        jax=lambda x, p: x * p["gamma"][:, None, None] + p["beta"][:, None, None],
        parameters={"gamma": lambda shape: shape[:1], "beta": lambda shape: shape[:1]},
        rank=3)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from bpcheck.core.user_code import limited, nan_problem
from manual import stack_network
from manual.layer_kinds import ACTIVATION, LAYER_KINDS, Layer, LayerKind
from manual.spec import ACTIVATIONS

Shape = tuple[int, ...]


class UserLayerError(Exception):
    """The user's ``part`` (forward, backward, torch or jax) raised ``error``, or returned
    something that is not what the layer's contract says (``error`` is then a ValueError)."""

    def __init__(self, layer: str, part: str, error: BaseException) -> None:
        super().__init__(f"{layer}: " + (f"your {part} raised {error!r}" if part else str(error)))
        self.layer, self.part, self.error = layer, part, error


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

    def kind(self) -> LayerKind:
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

    def pair(self) -> tuple[Callable, Callable]:
        """(forward, backward) in the engine's form, each call guarded: what the user's code
        raises or wrongly returns (a wrong shape or dtype included) is a ``UserLayerError``."""
        output_shape = self.kind().output_shape

        def forward(x: np.ndarray, params: dict, layer: Layer) -> tuple[np.ndarray, object]:
            copies = {k: v.copy() for k, v in params.items()}  # the user's code cannot change ours
            out = guarded_call(self.name, "forward", self.forward, x.copy(), copies)
            if not (isinstance(out, tuple) and len(out) == 2):
                raise _wrong(self.name, f"forward returned {type(out).__name__}; expected (out, cache)")
            expected = (x.shape[0], *output_shape(x.shape[1:]))
            _same(self.name, "forward's out", out[0], expected, x.dtype)
            _no_nan(self.name, "forward's out", out[0], (x, *params.values()))
            return np.asarray(out[0]), (out[1], params, x.shape, x.dtype)

        def backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, dict]:
            own_cache, params, shape, dtype = cache
            result = guarded_call(self.name, "backward", self.backward, dout.copy(), own_cache)
            if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
                raise _wrong(self.name, f"backward returned {type(result).__name__}; expected (dx, grads), "
                                        "grads a dict")
            dx, grads = result
            if set(grads) != set(params):
                raise _wrong(self.name, f"backward's grads have keys {sorted(grads)}; expected "
                                        f"{sorted(params)}")
            _same(self.name, "backward's dx", dx, shape, dtype)
            for name, g in grads.items():
                _same(self.name, f"backward's grads[{name!r}]", g, params[name].shape, dtype)
            given = (dout, *params.values())
            _no_nan(self.name, "backward's dx", dx, given)
            for name, g in grads.items():
                _no_nan(self.name, f"backward's grads[{name!r}]", g, given)
            return np.asarray(dx), {name: np.asarray(g) for name, g in grads.items()}

        return forward, backward


def _shape(layer: str, part: str, function: Callable, shape: Shape) -> Shape:
    """What a user's shape function gives, as a tuple of positive ints, else an error naming it."""
    value = guarded_call(layer, part, function, shape)
    positive = isinstance(value, tuple | list) and all(
        isinstance(d, int | np.integer) and d >= 1 for d in value)
    if not positive:
        raise _wrong(layer, f"{part} gave {value!r} for a sample of shape {shape}; expected a tuple "
                            "of positive ints")
    return tuple(int(d) for d in value)


def _wrong(layer: str, what: str) -> UserLayerError:
    return UserLayerError(layer, "", ValueError(what))


def _same(layer: str, what: str, value, shape: tuple, dtype: np.dtype) -> None:
    """A ``UserLayerError`` unless ``value`` is an array of ``shape`` and ``dtype``."""
    array = np.asarray(value)
    if array.shape != tuple(shape):
        raise _wrong(layer, f"{what} has shape {array.shape}; expected {tuple(shape)}")
    if array.dtype != dtype:
        raise _wrong(layer, f"{what} has dtype {array.dtype}; expected {dtype} (the input's)")


def _no_nan(layer: str, what: str, value, inputs: tuple) -> None:
    """A ``UserLayerError`` naming ``what`` if ``value`` holds a NaN though no input does."""
    wrong = nan_problem(value, inputs)
    if wrong is not None:
        raise _wrong(layer, f"{what}: {wrong}")


def guarded_call(layer: str, part: str, function: Callable, *args):
    """``function(*args)`` within the check's time limit (``bpcheck.core.user_code.limited``); what it
    raises, ``sys.exit`` included, comes out as a ``UserLayerError`` naming the part."""
    try:
        return limited(function, args)
    except (Exception, SystemExit) as error:
        raise UserLayerError(layer, part, error) from error


@contextmanager
def registered(layer: UserLayer) -> Iterator[None]:
    """The layer joins ``manual.stack``'s kinds, the derived rule's pairs and both witnesses'
    tables under its name, and leaves them on exit."""
    from reference import jax_stack, torch_stack

    if layer.name in LAYER_KINDS:
        raise ValueError(f"a layer named {layer.name!r} is already registered (one check at a time)")
    tables = [(LAYER_KINDS, layer.kind()), (stack_network.PAIRS, layer.pair()),
              (torch_stack.USER_LAYERS, _guarded(layer, "torch")),
              (jax_stack.USER_LAYERS, _guarded(layer, "jax"))]
    for table, value in tables:
        table[layer.name] = value
    try:
        yield
    finally:
        for table, _ in tables:
            table.pop(layer.name, None)


def _guarded(layer: UserLayer, part: str) -> Callable:
    """The user's torch or jax forward: what it raises, or an output of the wrong type or
    shape, is a ``UserLayerError`` naming it."""
    function, kind = getattr(layer, part), "torch.Tensor" if part == "torch" else "jax array"
    output_shape = layer.kind().output_shape

    def forward(x, params):
        out = guarded_call(layer.name, part, function, x, params)
        if type(out).__module__.split(".")[0] not in (("torch",) if part == "torch" else ("jax", "jaxlib")):
            raise _wrong(layer.name, f"your {part} forward returned {type(out).__name__}; expected a {kind}")
        if tuple(out.shape[1:]) != output_shape(tuple(x.shape[1:])):
            raise _wrong(layer.name, f"your {part} forward's out has shape {tuple(out.shape)}")
        return out

    return forward
