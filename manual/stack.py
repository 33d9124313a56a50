"""A network as a sequence of layers: the description every part of bpcheck reads for networks
beyond the dense-only MLP (``manual.spec`` keeps that short form).

Text form, layers separated by ``;`` (``parse_network``)::

    conv2d:8,k3,s1,p1;relu;max_pool2d:k2;flatten;dense:10

=================  ==========================================================  ==============
layer              options (after ``:``, comma-separated)                      parameters
=================  ==========================================================  ==============
``conv2d:F``       F output channels; ``k3`` or ``k2x3`` kernel (3), ``s2`` or    conv1.W, conv1.b
                   ``s2x1`` stride (1), ``p`` zero padding per side (0), ``d``
                   dilation (1), ``nobias`` (sizes are rows x columns)
``max_pool2d``     ``k`` kernel (2), ``s`` stride (the kernel, as in torch)    —
``avg_pool2d``     ``k`` kernel (2), ``s`` stride (the kernel, as in torch)    —
``batch_norm``     ``m`` running-statistics momentum (0.1), ``e`` ε (1e-5)     bn1.gamma, bn1.beta
``layer_norm``     ``e`` ε (1e-5): over every axis of a sample                ln1.gamma, ln1.beta
``dropout``        ``p`` drop probability (0.5); the 0/1 mask is an input      —
``flatten``        —                                                           —
``dense:F``        F outputs; ``nobias``                                       dense1.W, dense1.b
``embedding:D``    D outputs per token; ``v`` the vocabulary V (required);       emb1.W
                   first layer only, on (T,) integer tokens
``rnn:H``          H hidden units, tanh; ``nobias``                            rnn1.W_ih, W_hh,
                                                                               b_ih, b_hh, h0
``lstm:H``         gates i, f, g, o (torch's order); ``nobias``                (rnn's), lstm1.c0
``gru:H``          gates r, z, n (torch's order); ``nobias``                   (rnn's names)
``attention``      ``h`` heads (1), ``causal``, ``noproj`` (Q = K = V = x, no     attn1.W_q, b_q,
                   output projection), ``nobias``                              W_k, W_v, b_v,
                                                                               W_o, b_o
``res(…)``         a residual block: out = x + body(x), the body a sequence    (its layers')
                   of layers that keeps the shape
an activation      any elementwise name of ``manual.vocabulary`` (``relu``,    —
                   ``leaky_relu:0.2``, …)
=================  ==========================================================  ==============

Data are NCHW: a batch x is (N, C, H, W) for a spatial ``input_shape`` (C, H, W), (N, F)
for (F,), (N, T, D) for a sequence (T, D), and integer tokens (N, T) for (T,) when the first
layer is an embedding. Recurrent layers and attention (``manual.layers.recurrent``,
``manual.layers.attention``) take (T, D) samples and give every step's output; dense acts
at every step of a (T, D) sample. Parameters follow torch's layouts: conv W (F, C, kh, kw),
dense W (F_out, F_in).
Batch norm also keeps running statistics (bn1.running_mean, bn1.running_var, buffers updated by
the step); dropout's mask for layer ``drop1`` is x-shaped, 0 or 1. The last layer's output
(N, C) goes to the loss, any of ``manual.vocabulary`` that takes the output as it is (not as
probabilities): cross-entropy on integer labels, squared errors on values (N, C), …, summed or
averaged over the batch. An output (N, T, C) is judged at every step, on targets (N, T) or
(N, T, C), with the 0/1 mask ``masks["padding"]`` (N, T) of real steps (all 1 if left out):
``manual.layers.sequence.masked_loss``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from manual.layer_kinds import (
    ACTIVATION,
    LAYER_KINDS,
    SEQUENCE_KINDS,
    Layer,
    LayerKind,
    check_options,
    output_size,
    stride,
    walk,
)
from manual.stack_text import describe_layers, name_layers, parse_layers
from manual.vocabulary import DTYPES, LOSSES, REDUCTIONS, one_of

__all__ = ["ACTIVATION", "LAYER_KINDS", "PADDING", "SEQUENCE_KINDS", "Layer", "LayerKind", "Stack",
           "stride", "walk"]
PADDING = "padding"  # the per-time-step loss's mask of real steps, in ``masks``
RANKS = {1: "(F,)", 2: "(T, D)", 3: "(C, H, W)"}


@dataclass(frozen=True)
class Stack:
    """A network of layers on samples of ``input_shape``, its loss and dtype."""

    layers: tuple[Layer, ...]
    input_shape: tuple[int, ...]
    loss: str = "softmax-ce-labels"
    reduction: str = "mean"
    dtype: str = "float64"
    shapes: tuple[tuple[int, ...], ...] = field(init=False, repr=False)  # each layer's output

    def __post_init__(self) -> None:
        layers = parse_layers(self.layers) if isinstance(self.layers, str) else tuple(self.layers)
        object.__setattr__(self, "layers", name_layers(layers))
        for layer in walk(self.layers):
            check_options(layer)
        if not isinstance(self.input_shape, tuple | list):
            raise TypeError(f"input_shape={self.input_shape!r}: expected a tuple, e.g. (6,) for 6 "
                            "tokens, (5, 3) for 5 steps of 3 features or (1, 8, 8)")
        shape = tuple(self.input_shape)
        if not shape or len(shape) not in RANKS or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape):
            raise ValueError(f"input_shape={self.input_shape!r}: expected (C, H, W), (T, D), (F,) "
                             "or (T,) tokens, positive integers")
        object.__setattr__(self, "input_shape", shape)
        if not self.layers:
            raise ValueError("layers is empty: a network needs at least one layer")
        one_of(self.loss, [name for name, record in LOSSES.items() if not record.probability_outputs],
               "loss")
        one_of(self.reduction, REDUCTIONS, "reduction")
        one_of(self.dtype, DTYPES, "dtype")
        for layer in walk(self.layers[1:]):
            if layer.kind == "embedding":
                raise ValueError(f"{layer} (embedding) reads integer tokens: it must be the first layer")
        object.__setattr__(self, "shapes", tuple(output_shapes(self.layers, shape)))
        if len(self.shapes[-1]) not in (1, 2):
            raise ValueError(f"the last layer ({self.layers[-1]}) gives samples of shape "
                             f"{self.shapes[-1]}; the loss needs (C,), or (T, C) at every step: "
                             "end with flatten and dense")

    @property
    def classes(self) -> int:
        return self.shapes[-1][-1]

    @property
    def tokens(self) -> bool:
        """Whether x holds integer tokens (the first layer is an embedding): no gradient of x."""
        return self.layers[0].kind == "embedding"

    @property
    def per_step(self) -> bool:
        """Whether the loss is taken at every step of (T, C) outputs."""
        return len(self.shapes[-1]) == 2

    @property
    def targets(self) -> str:
        return LOSSES[self.loss].targets

    def replace(self, **changes: Any) -> Stack:
        """A copy with some fields changed (and validated again)."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """The network as text (``describe_layers``) on its input shape."""
        shape = self.input_shape

        def count(n: int, word: str) -> str:
            return f"{n} {word}" + "s" * (n != 1)

        samples = (f"sequences of {count(shape[0], 'token')}" if self.tokens else
                   f"sequences of {count(shape[0], 'step')} of {count(shape[1], 'feature')}"
                   if len(shape) == 2 else f"samples of {count(shape[0], 'feature')}" if len(shape) == 1
                   else f"{'x'.join(map(str, shape))} samples")
        return f"{describe_layers(self.layers)} on {samples}"


def output_shapes(layers: tuple[Layer, ...], shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Each layer's output shape for one sample, checking each layer fits its input."""
    shapes = []
    for layer in layers:
        kind = LAYER_KINDS.get(layer.kind)
        need = kind.rank if kind else None
        allowed = need if isinstance(need, tuple) else (need,)
        if need is not None and len(shape) not in allowed:
            wanted = " or ".join(RANKS[rank] for rank in allowed)
            hint = (": it reads (T,) integer tokens (--input-shape T), as the first layer"
                    if layer.kind == "embedding" else
                    ": add flatten before it" if 1 in allowed and len(shape) == 3 else "")
            raise ValueError(f"{layer} ({layer.kind}) needs samples of shape {wanted}{hint}, "
                             f"but its input is {shape}")
        if layer.kind in ("conv2d", "max_pool2d", "avg_pool2d"):
            height, width = (output_size(size, k, step, layer.padding, layer.dilation)
                             for size, k, step in zip(shape[1:], layer.kernel, stride(layer), strict=True))
            if height < 1 or width < 1:
                raise ValueError(f"{layer} ({describe_layers((layer,))}) does not fit its "
                                 f"{shape[1]}x{shape[2]} input: its window is larger than the "
                                 "(padded) input")
            shape = (layer.width if layer.kind == "conv2d" else shape[0], height, width)
        elif layer.kind in ("dense", "embedding", "rnn", "lstm", "gru"):
            shape = (*shape[:-1], layer.width) if layer.kind == "dense" else (shape[0], layer.width)
        elif layer.kind == "attention" and shape[1] % layer.heads:
            raise ValueError(f"{layer} (attention) splits its {shape[1]} features over "
                             f"{layer.heads} heads: the features must be a multiple of the heads")
        elif layer.kind == "flatten":
            shape = (math.prod(shape),)
        elif kind is not None and kind.output_shape is not None:  # a user's layer
            shape = tuple(kind.output_shape(shape))
        elif layer.kind == "res":
            inner = output_shapes(layer.body, shape)[-1] if layer.body else shape
            if inner != shape:
                raise ValueError(f"{layer}'s body turns {shape} into {inner}: a residual block "
                                 "must keep the shape")
        shapes.append(shape)
    return shapes


def layer_inputs(stack: Stack):
    """(layer, its input shape per sample) for every layer, residual bodies included."""
    def visit(layers, shape):
        for layer, out in zip(layers, output_shapes(layers, shape), strict=True):
            yield layer, shape
            if layer.body:
                yield from visit(layer.body, shape)
            shape = out
    yield from visit(stack.layers, stack.input_shape)


def param_shapes(stack: Stack) -> dict[str, tuple[int, ...]]:
    """``{"conv1.W": (F, C, kh, kw), "conv1.b": (F,), "bn1.gamma": (C,), …}`` in layer order."""
    shapes: dict[str, tuple[int, ...]] = {}
    for layer, shape in layer_inputs(stack):
        kind = LAYER_KINDS.get(layer.kind)
        if kind is not None and kind.parameter_shapes is not None:  # a user's layer
            shapes |= {f"{layer}.{name}": tuple(s) for name, s in kind.parameter_shapes(shape).items()}
            continue
        gates = (kind.gates if kind is not None else 0) * layer.width
        for parameter in layer.parameters:
            shapes[f"{layer}.{parameter}"] = {
                ("conv2d", "W"): (layer.width, shape[0], *layer.kernel),
                ("dense", "W"): (layer.width, shape[-1]),
                ("embedding", "W"): (layer.vocab, layer.width),
                ("attention", "W"): (shape[-1], shape[-1]), ("attention", "b"): (shape[-1],),
                ("recurrent", "W_ih"): (gates, shape[-1]), ("recurrent", "W_hh"): (gates, layer.width),
                ("recurrent", "b_ih"): (gates,), ("recurrent", "b_hh"): (gates,),
                ("batch_norm", "gamma"): shape[:1], ("batch_norm", "beta"): shape[:1],
                ("layer_norm", "gamma"): shape, ("layer_norm", "beta"): shape,
            }.get(("recurrent" if gates else layer.kind,
                   parameter[:1] if layer.kind == "attention" else parameter), (layer.width,))
    return shapes


def buffer_shapes(stack: Stack) -> dict[str, tuple[int, ...]]:
    """Batch norm's running statistics: ``{"bn1.running_mean": (C,), …}``."""
    return {f"{layer}.{buffer}": shape[:1] for layer, shape in layer_inputs(stack)
            for buffer in (LAYER_KINDS[layer.kind].buffers if layer.kind in LAYER_KINDS else ())}


def mask_shapes(stack: Stack, n: int) -> dict[str, tuple[int, ...]]:
    """Each dropout layer's mask shape for a batch of n: ``{"drop1": (n, …)}``, and the
    per-time-step loss's ``{"padding": (n, T)}``."""
    return {layer.name: (n, *shape) for layer, shape in layer_inputs(stack)
            if layer.kind in LAYER_KINDS and LAYER_KINDS[layer.kind].mask} | (
                {PADDING: (n, stack.shapes[-1][0])} if stack.per_step else {})


def layers_of(stack: Stack) -> dict[str, Layer]:
    """Every layer by name, residual bodies included."""
    return {layer.name: layer for layer in walk(stack.layers)}


def from_spec(spec) -> Stack:
    """The dense-only network an MLP spec (``manual.spec``, the short form) describes, as layers:
    ``dense:H_1;σ_1;…;dense:C;σ_L`` on samples of (F,). A penalty and a softmax output layer have
    no layer of their own: use ``identity`` and ``softmax-ce-labels`` for the latter."""
    if spec.l2:
        raise ValueError(f"l2={spec.l2}: a penalty is not a layer; networks of layers have none")
    items = [f"dense:{width};{name}" for width, name in zip(spec.sizes[1:], spec.activations, strict=True)]
    return Stack(";".join(items), (spec.sizes[0],), spec.loss, spec.reduction, spec.dtype)


def from_spec_arrays(spec, params: dict, X, Y) -> tuple[dict, Any, Any]:
    """The same numbers for ``from_spec(spec)``: W_k as ``densek.W`` (a bias node's last column
    as ``densek.b``), samples as rows."""
    converted = {}
    for k in range(1, spec.depth + 1):
        W = params[f"W{k}"]
        converted[f"dense{k}.W"] = W[:, :spec.sizes[k - 1]]
        converted[f"dense{k}.b"] = W[:, spec.sizes[k - 1]] if spec.bias == "node" else params[f"b{k}"]
    rows = spec.layout == "rows"
    return converted, X if rows else X.T, Y if rows or Y.ndim == 1 else Y.T
