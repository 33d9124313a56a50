"""Hypothesis strategies for networks of layers (``manual.stack``): one layer of each kind on its
own, and small random networks.

Hypothesis draws the *structure* — the layer's options (channels 1–3, kernel 1–3 up to the
padded input, stride 1–3, padding 0–2, dilation 1–2, ε, momentum, drop probability), input
(C, H, W) or (F,) — so normalisation runs over spatial and flat samples — with sides 1–7,
batch 1–4 — with every size capped so a failure shrinks to the smallest layer. The
*values* are drawn from a NumPy generator seeded by Hypothesis, at a scale Hypothesis picks
(10⁻², 1 or 10²): continuous values make ties (two equal maxima in a pooling window) and kinks
(a relu input at 0) events of probability zero, where Hypothesis's element-wise arrays favour
repeated values; ``away_from_kinks_and_ties`` then rejects the rare draw within
KINK_MARGIN_RELATIVE of one, so finite differences never step across. The tie convention and
batch norm's batch of one are tested on their own.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from bpcheck.layers.problem import StackProblem, random_problem
from manual import stack_network
from manual.layers.pooling import windows
from manual.spec import ACTIVATIONS, parse_activation
from manual.stack import ACTIVATION, LAYER_KINDS, Stack, layer_inputs, output_shapes
from manual.stack_text import parse_layers

#: a stack problem's largest image side, channels and batch (samples N)
MAX_SIDE, MAX_CHANNELS, MAX_STACK_BATCH = 7, 3, 4
SCALES = (1e-2, 1.0, 1e2)
#: Inputs of whole networks stay below 10: at 100 a conv feeding tanh saturates it, and such a
#: network is inconclusive by design (tested on its own).
NETWORK_SCALES = (1e-2, 1.0, 10.0)
#: Relative distance from a kink or a tie below which a draw is rejected. Finite differences
#: step θ by ≲ 1e−5·max(1, |θ|) (h and 2h): at input scale 1 and above that moves a layer's
#: input far less; at 10⁻² about as much, and a step across a kink then shows as D_h ≠ D_2h,
#: which widens the difference's error estimate (the row is inconclusive, not a false alarm).
KINK_MARGIN_RELATIVE = 1e-3
#: Kinds checked alone (activations, flatten and residual blocks are checked inside networks).
ALONE = ("conv2d", "max_pool2d", "avg_pool2d", "batch_norm", "layer_norm", "dropout", "dense")


def _every_tap_reads_input(side: int, kernel: int, stride: int, padding: int, dilation: int) -> bool:
    """The kernel fits the padded side, and each of its taps reads a real input (not only
    padding) at some output: a tap that never does has a gradient of exact zeros."""
    outputs = (side + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    return outputs >= 1 and all(any(0 <= i * stride + u * dilation - padding < side for i in range(outputs))
                                for u in range(kernel))


def _conv2d_text(draw, shape: tuple[int, ...]) -> str:
    options = st.tuples(st.integers(0, 2), st.integers(1, 2), st.integers(1, 3), st.integers(1, 3),
                        st.integers(1, 3))  # padding, dilation, stride, kh, kw
    padding, dilation, step, kh, kw = draw(options.filter(lambda o: all(
        _every_tap_reads_input(side, k, o[2], o[0], o[1]) for side, k in zip(shape[1:], o[3:], strict=True))))
    bias = draw(st.booleans())
    return (f"conv2d:{draw(st.integers(1, MAX_CHANNELS))},k{kh}x{kw},s{step},p{padding},d{dilation}"
            + ("" if bias else ",nobias"))


def _pool_text(kind: str):
    def text(draw, shape: tuple[int, ...]) -> str:
        kh, kw = (draw(st.integers(1, min(3, side))) for side in shape[1:])
        return f"{kind}:k{kh}x{kw},s{draw(st.integers(1, 3))}"
    return text


#: kind → how its options are drawn for a sample shape, ``text(draw, shape)`` → the layer's text;
#: a kind without an entry takes no options (its name is its text). A new kind adds its entry
#: here (``bpcheck.user.registry`` puts a registered kind's in for a ``with`` block).
LAYER_TEXTS = {
    "conv2d": _conv2d_text,
    "max_pool2d": _pool_text("max_pool2d"),
    "avg_pool2d": _pool_text("avg_pool2d"),
    "batch_norm": lambda draw, shape: (f"batch_norm:m{draw(st.sampled_from([0.1, 0.5, 1.0]))},"
                                       f"e{draw(st.sampled_from([1e-5, 1e-3]))}"),
    "layer_norm": lambda draw, shape: f"layer_norm:e{draw(st.sampled_from([1e-5, 1e-3]))}",
    "dropout": lambda draw, shape: f"dropout:p{draw(st.sampled_from([0.0, 0.25, 0.5, 0.9]))}",
    "dense": lambda draw, shape: (f"dense:{draw(st.integers(1, 4))}"
                                  + ("" if draw(st.booleans()) else ",nobias")),
}


@st.composite
def layer_texts(draw, kind: str, shape: tuple[int, ...]) -> str:
    """One layer of ``kind`` that fits samples of ``shape`` (C, H, W) or (F,), as text
    (``LAYER_TEXTS``)."""
    if kind not in LAYER_KINDS:
        raise ValueError(f"kind={kind!r}: expected a layer kind, e.g. one of {ALONE}")
    return LAYER_TEXTS[kind](draw, shape) if kind in LAYER_TEXTS else kind


@st.composite
def shapes(draw, spatial: bool, channels: int = MAX_CHANNELS, features: int = 6) -> tuple[int, ...]:
    """(C, H, W) with C ≤ ``channels`` and sides ≤ MAX_SIDE, or (F,) with F ≤ ``features``."""
    if spatial:
        return (draw(st.integers(1, channels)), draw(st.integers(1, MAX_SIDE)),
                draw(st.integers(1, MAX_SIDE)))
    return (draw(st.integers(1, features)),)


@st.composite
def stack_values(draw, stack: Stack, min_batch: int = 1, scales: tuple[float, ...] = SCALES
                 ) -> tuple[int, int, float]:
    """(batch N, seed, scale) of values for ``stack`` (``random_problem``'s): N of 1–4 (at least
    ``min_batch``, and three values a channel for batch norm), a seed, one of ``scales``."""
    # batch norm over 3 values a channel at least: with 2, x̂ = ±1 whatever x is, and ∂L/∂x ≡ 0
    per_sample = [math.prod(shape[1:]) for layer, shape in layer_inputs(stack) if layer.kind == "batch_norm"]
    n = draw(st.integers(max([min_batch, *(math.ceil(3 / size) for size in per_sample)]), MAX_STACK_BATCH))
    return n, draw(st.integers(0, 2**32 - 1)), draw(st.sampled_from(scales))


@st.composite
def stack_problems(draw, stack: Stack, min_batch: int = 1, scales: tuple[float, ...] = SCALES
                   ) -> StackProblem:
    """Values for ``stack`` (``stack_values``), η = 0.1; rejected (``hypothesis.assume``) within
    KINK_MARGIN_RELATIVE of a kink or tie."""
    from hypothesis import assume

    n, seed, scale = draw(stack_values(stack, min_batch, scales))
    problem = random_problem(stack, n, seed=seed, scale=scale)
    assume(away_from_kinks_and_ties(problem))
    return problem


@st.composite
def single_layer_problems(draw, kind: str, dtype: str = "float64") -> StackProblem:
    """One layer of ``kind`` alone, then flatten, under ½Σ(out − y)² on random targets: the loss
    hands the layer a dout of its own (out − y). Layer norm gets three values a sample at least
    (over one, x̂ ≡ 0 and γ does nothing; over two, x̂ = ±1 and ∂L/∂x ≡ 0)."""
    rank = LAYER_KINDS[kind].rank
    ranks = (1, 3) if rank is None else rank if isinstance(rank, tuple) else (rank,)
    spatial = 3 in ranks and (1 not in ranks or draw(st.booleans()))
    shape = draw(shapes(spatial).filter(lambda s: kind != "layer_norm" or math.prod(s) > 2))
    text = draw(layer_texts(kind, shape))
    stack = Stack(f"{text};flatten", shape, loss="half-sse", reduction="sum", dtype=dtype)
    return draw(stack_problems(stack))


def away_from_kinks_and_ties(problem: StackProblem) -> bool:
    """Every activation input at least KINK_MARGIN_RELATIVE·(its layer's largest |input|) from the
    record's kinks, and every max-pooling window's largest value that far above the next."""
    p = problem.in_float64()
    return _clear(p.stack.layers, p.x, p)


def _clear(layers, x: np.ndarray, p: StackProblem) -> bool:
    for layer in layers:
        scale = max(float(np.max(np.abs(x), initial=0.0)), np.finfo(float).tiny)
        kinks = (ACTIVATIONS[parse_activation(layer.activation)[0]].kinks if layer.kind == ACTIVATION
                 else LAYER_KINDS[layer.kind].kinks if layer.kind in LAYER_KINDS else ())
        if any(np.min(np.abs(x - kink)) < KINK_MARGIN_RELATIVE * scale for kink in kinks):
            return False
        if layer.kind == "max_pool2d" and _smallest_gap(x, layer) < KINK_MARGIN_RELATIVE * scale:
            return False
        if layer.kind == "res" and not _clear(layer.body, x, p):
            return False
        x = stack_network.forward((layer,), p.params, x, p.masks)[0]
    return True


def _smallest_gap(x: np.ndarray, layer) -> float:
    """The smallest difference between a pooling window's largest and second-largest value."""
    views, _, _ = windows(x, layer)
    if len(views) < 2:
        return np.inf
    stacked = np.sort(np.stack([x[:, :, rows, cols] for rows, cols in views]), axis=0)
    return float(np.min(stacked[-1] - stacked[-2]))


HIDDEN = ("relu", "tanh", "sigmoid", "leaky_relu:0.2", "softplus", "identity")


def _after(text: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The sample shape after the layers ``text``."""
    return output_shapes(parse_layers(text), shape)[-1]


@st.composite
def networks(draw, dtype: str = "float64") -> Stack:
    """1–2 blocks of conv2d [batch_norm] activation [pooling] [residual block] [dropout], then
    [layer_norm], flatten and dense [activation dense], under a loss on labels or values. A
    conv2d before batch norm has no bias (its exact gradient would be zero: inconclusive)."""
    shape = (draw(st.integers(1, 2)), draw(st.integers(3, MAX_SIDE)), draw(st.integers(3, MAX_SIDE)))
    items, current = [], shape
    for _ in range(draw(st.integers(1, 2))):
        conv = draw(layer_texts("conv2d", current))
        normalised = draw(st.booleans())
        if normalised and not conv.endswith(",nobias"):
            conv += ",nobias"
        block = [conv] + (["batch_norm"] if normalised else []) + [draw(st.sampled_from(HIDDEN))]
        current = _after(";".join(block), current)
        if draw(st.booleans()) and min(current[1:]) >= 2:
            block.append(draw(layer_texts(draw(st.sampled_from(["max_pool2d", "avg_pool2d"])), current)))
            current = _after(block[-1], current)
        if draw(st.booleans()):
            k = draw(st.sampled_from([1, 3]))
            block.append(f"res(conv2d:{current[0]},k{k},p{k // 2};{draw(st.sampled_from(HIDDEN))})")
        if draw(st.booleans()):
            block.append(draw(layer_texts("dropout", current)))
        items += block
    if draw(st.booleans()) and math.prod(current) > 2:
        items.append("layer_norm")
    items += ["flatten", f"dense:{draw(st.integers(2, 4))}"]
    if draw(st.booleans()):
        items += [draw(st.sampled_from(HIDDEN)), f"dense:{draw(st.integers(2, 3))}"]
    loss = draw(st.sampled_from(["softmax-ce-labels", "half-sse"]))
    return Stack(";".join(items), shape, loss=loss, reduction=draw(st.sampled_from(["mean", "sum"])),
                 dtype=dtype)
