"""Your own layer. Of a kind bpcheck knows, it is declared ``like=`` that kind and checked by
bpcheck's own witnesses of it (``bpcheck.user.like``; your layouts and calling style declared,
``bpcheck.user.layouts``, ``bpcheck.user.styles``)::

    conv = UserLayer("conv", conv_forward, conv_backward, like="conv2d:2,k3,s2,p1",
                     parameters=("w", "b"), layout={"x": "NHWC", "w": "HWIO", "b": "111O"})

Of a new kind: a cs231n pair — ``forward(x, params) → (out, cache)`` and
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

from bpcheck.user.guards import guard
from bpcheck.user.like import Like, read_like
from bpcheck.user.like_inputs import check_style, read_inputs
from bpcheck.user.like_pair import like_pair
from bpcheck.user.namespace import layer_fields, unwitnessed
from bpcheck.user.results import arrays_problem, in_dtype
from manual.layer_kinds import ACTIVATION, LAYER_KINDS, Layer, LayerKind
from manual.spec import ACTIVATIONS

Shape = tuple[int, ...]


@dataclass(frozen=True)
class UserLayer:
    """A layer of yours: its forward and hand-written backward, checked inside random networks.

    Args:
        name: how reports name it.
        forward: ``forward(x, params, xp) → out`` (or ``(out, cache)``) written once against an
            array namespace, run with NumPy, torch and jax (``bpcheck.user.namespace``); or a
            NumPy ``forward(x, params) → (out, cache)``, with ``like=``, with ``torch=`` and
            ``jax=``, or alone (then checked against its own finite differences only, float64:
            ``bpcheck.user.own_forward``). With ``out`` alone the backward gets
            ``cache = (x, params)``.
        backward: ``backward(dout, cache) → (dx, {name: gradient})``; with ``like=``, also
            ``(dx, dw, db)`` in the order of ``parameters``, or an object's methods through
            ``object_pair``.
        torch: ``torch(x, params)`` on torch tensors, returning the output.
        jax: ``jax(x, params)`` on jax arrays, returning the output.
        parameters: each parameter's name → its shape as a function of one sample's input shape
            ((C, H, W), (F,) or (T, D)); with ``like=``, your names for the kind's parameters
            in its order, or a mapping yours → the kind's.
        output_shape: one sample's output shape from its input's (default: the same).
        rank: 3 for (C, H, W) samples only, 2 for sequences (T, D) only, 1 for (F,) only; None
            for (C, H, W) or (F,).
        kinks: input values where it has no derivative; the draws keep away from them.
        fits: ``fits(shape)``, whether it takes samples of that shape (a 2-group norm: an even
            C); the others are not drawn.
        length: the sequence length T every draw has (else drawn 1 to 5).
        like: a kind bpcheck knows, as network text (``"conv2d:2,k3,s2,p1"``, ``"lstm:2"``,
            ``"embedding:4,v10"``: tokens (N, T) in, dW alone back; ``"dropout:p0.25"``: your
            forward draws its mask, its RNG replayed at every call): bpcheck's own witnesses
            check it, and you write no torch or jax (``bpcheck.user.like``).
        layout: your axes where they are not bpcheck's NCHW, (N, T, D), (N, F), conv W
            (C_out, C_in, kh, kw) and dense W (F_out, F_in): ``"NHWC"``, or per array
            ``{"x": "NHWC", "w": "HWIO", "b": "111O"}``; a recurrent layer's gates in your
            order, ``{"gates": "ifog"}``.
        inputs: attention's query, key and value where they are separate inputs,
            ``("q", "k", "v")`` (``bpcheck.user.like_inputs``)."""

    kind: ClassVar[str] = "layer"  # its tables in ``bpcheck.user.registry.REGISTRY``
    name: str
    forward: Callable
    backward: Callable
    torch: Callable | None = None  # None: derived from forward(x, params, xp), or none; not with like=
    jax: Callable | None = None
    parameters: dict[str, Callable[[Shape], Shape]] | tuple[str, ...] | dict[str, str] = field(
        default_factory=dict)
    output_shape: Callable[[Shape], Shape] | None = None
    rank: int | None = None
    kinks: tuple[float, ...] = ()  # input values where the layer has no derivative (a PReLU's 0)
    fits: Callable[[Shape], bool] | None = None  # the sample shapes it takes (None: every one)
    #: T, every sequence's steps (rank 2), pinned: bpcheck draws 1–7 steps, too few for a
    #: mistake after many (a BPTT truncated at 8 steps); None: drawn
    length: int | None = None
    # --- like= (``bpcheck.user.like``): a kind bpcheck knows, checked by its own witnesses;
    # ``parameters`` then names the kind's in its order, ``layout`` gives your axes orders
    like: str | None = None
    layout: str | dict[str, str] | None = None
    #: attention's query, key and value as separate inputs, by your names (``("q", "k", "v")``;
    #: two: query and key = value): ``bpcheck.user.like_inputs``
    inputs: tuple[str, ...] | None = None
    declared: Like | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"name={self.name!r}: a layer's name is an identifier (letters, digits, _)")
        built_in = self.name in LAYER_KINDS and LAYER_KINDS[self.name].output_shape is None
        if built_in or self.name in ACTIVATIONS or self.name == ACTIVATION:
            raise ValueError(f"name={self.name!r} is a built-in layer or activation; choose another")
        inputs = read_inputs(self.inputs, self.like, self.parameters)
        if len(inputs) > 1:
            check_style(self.name, inputs, self.forward, self.backward)
        if self.like is not None or self.layout is not None:  # like= (bpcheck.user.like)
            if self.like is None:
                raise ValueError(f"layout={self.layout!r} needs like=, the kind your layer is")
            if self.torch is not None or self.jax is not None:
                raise TypeError("like= and torch=/jax= were both given: like= stands for them; give one")
            declared = read_like(self.like, self.parameters, self.layout, self.rank, inputs)
            object.__setattr__(self, "declared", declared)
        # one forward (bpcheck.user.namespace): forward(x, params, xp) gives torch and jax; a NumPy
        # forward(x, params) alone is checked against finite differences of itself only
        for part, value in ({} if self.declared else layer_fields(self.name, self.forward, self.torch,
                                                                    self.jax)).items():
            object.__setattr__(self, part, value)
        for part in ("forward", "backward") + (("torch", "jax") if self.torch is not None else ()):
            if not callable(getattr(self, part)):
                raise TypeError(f"{part}={getattr(self, part)!r} must be callable")
        if not self.declared and (not isinstance(self.parameters, dict) or not all(
                isinstance(k, str) and callable(v) for k, v in self.parameters.items())):
            raise TypeError("parameters must map each parameter's name to a function of the input "
                            "shape giving its shape, e.g. {'gamma': lambda shape: shape[:1]}")
        if not isinstance(self.kinks, tuple) or not all(isinstance(k, int | float) for k in self.kinks):
            raise TypeError(f"kinks={self.kinks!r} must be a tuple of numbers, e.g. (0.0,)")
        if self.fits is not None and not callable(self.fits):
            raise TypeError(f"fits={self.fits!r} must be a function of one sample's shape, or None")
        if self.rank not in (None, 1, 2, 3):
            raise ValueError(f"rank={self.rank!r}: expected 3 ((C, H, W) samples), 2 ((T, D) "
                             "sequences), 1 ((F,)) or None")
        if self.length is not None:
            _check_length(self)

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
        if self.declared is not None:
            raise TypeError(f"{self.name} is declared like={self.like!r}: a known kind, not registered")
        witnessed = self.torch is not None  # else your NumPy forward alone: no witness runs it
        return {"kinds": self.layer_kind(), "pairs": self.pair(),
                "torch": _witness_forward(self, "torch") if witnessed else unwitnessed(self.name, "torch"),
                "jax": _witness_forward(self, "jax") if witnessed else unwitnessed(self.name, "jax"),
                "texts": lambda draw, shape: self.name}

    def fits_shape(self, shape: Shape) -> bool:
        """Whether its ``fits`` (guarded) takes samples of ``shape``; True without one."""
        return self.fits is None or bool(guard(self.name, "fits", self.fits)(shape))

    def pair(self) -> tuple[Callable, Callable]:
        """(forward, backward) in the engine's form, each call guarded (``guard``): what the
        user's code raises or wrongly returns (a wrong shape or dtype included) is a
        ``UserCodeError`` naming the part."""
        if self.declared is not None:
            return like_pair(self.name, self.declared, self.forward, self.backward)
        output_shape = self.layer_kind().output_shape

        def forward(x: np.ndarray, params: dict, layer: Layer) -> tuple[np.ndarray, object]:
            copies = {k: v.copy() for k, v in params.items()}  # the user's code cannot change ours
            expect = _forward_result((x.shape[0], *output_shape(x.shape[1:])), x.dtype, (x, *params.values()))
            out = guard(self.name, "forward", self.forward, expect)(x.copy(), copies)
            return in_dtype(out[0], x.dtype), (out[1], params, x.shape, x.dtype)

        def backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, dict]:
            own_cache, params, shape, dtype = cache
            expect = _backward_result(params, shape, dtype, (dout, *params.values()))
            dx, grads = guard(self.name, "backward", self.backward, expect)(dout.copy(), own_cache)
            return in_dtype(dx, dtype), {name: in_dtype(g, dtype) for name, g in grads.items()}

        return forward, backward


#: The longest ``length=``: a sequence's steps, each a forward and a backward step of your code.
MAX_LENGTH = 64


def _check_length(layer: UserLayer) -> None:
    """``length=``: an int from 1 to MAX_LENGTH, for a layer of sequences only."""
    length = layer.length
    if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= MAX_LENGTH:
        raise ValueError(f"length={length!r} must be an int from 1 to {MAX_LENGTH} (a sequence's steps T)")
    sequences = layer.rank == 2 if layer.declared is None else 2 in layer.declared.ranks
    if not sequences:
        raise ValueError(f"length={length} pins a sequence's steps; {layer.name} takes no sequences "
                         "(declare rank=2, or like= a sequence kind such as 'lstm:4')")


def _shape(layer: str, part: str, function: Callable, shape: Shape) -> Shape:
    """What a user's shape function gives (guarded), as a tuple of positive ints."""
    def expect(args: tuple, value) -> str | None:
        if isinstance(value, tuple | list) and all(isinstance(d, int | np.integer) and d >= 1 for d in value):
            return None
        return f"{part} gave {value!r} for a sample of shape {shape}; expected a tuple of positive ints"

    return tuple(int(d) for d in guard(layer, part, function, expect)(shape))


def _forward_result(shape: Shape, dtype: np.dtype, inputs: tuple) -> Callable[[tuple, object], str | None]:
    """The forward's result: (out, cache), out an array of ``shape`` and the input's dtype."""
    def expect(args: tuple, result) -> str | None:
        if not (isinstance(result, tuple) and len(result) == 2):
            return f"forward returned {type(result).__name__}; expected (out, cache)"
        return arrays_problem([("forward's out", result[0], shape, "the output's")], dtype, inputs)

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
        return arrays_problem([("backward's dx", dx, shape, "x's")] + [
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
