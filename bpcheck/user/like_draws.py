"""The networks a ``like=`` layer (``bpcheck.user.like``) is drawn in: the pinned layer itself,
as text, alone (then flatten) under ½Σ(out − y)², or after a conv or dense layer and a hidden
activation, before flatten and dense:3, under softmax cross-entropy. Every other layer differs
from the pinned one (``nobias`` where it would not), so the derived network runs the user's
pair exactly once (``is_yours``).

The structures come from a fixed pool (``structures``), smallest first (where Hypothesis
shrinks to): jax compiles its witness once per structure and batch size (0.1–0.3 s each, most
of a check's time when every draw is new: 71 compiles in 100 draws of a conv, measured), and
keeps them on disk between runs. The pool still varies what window bugs need — one and several
channels, square and oblong inputs, odd and even sides from the smallest the layer takes —
while the values are drawn afresh every time.

An embedding reads tokens, so comes first: alone, or before a hidden activation, flatten and
dense:3; its tokens keep one repeated at least (``yours_drawn``). A dropout's mask is the one
the user's own forward draws, read back (``yours_drawn``, ``bpcheck.user.like``).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from bpcheck.layers.problem import StackProblem
from bpcheck.layers.strategies import HIDDEN, SCALES
from manual.layer_kinds import LAYER_KINDS, Layer
from manual.spec import ACTIVATIONS, parse_activation
from manual.stack import Stack, output_shapes, walk
from manual.stack_text import parse_layers

#: Sample sizes of the pool, beyond the smallest side s the layer takes: (C, H − s, W − s) for
#: images, F for features.
IMAGES = ((1, 0, 0), (2, 1, 0), (1, 0, 2), (3, 2, 1), (2, 3, 3), (5, 4, 2))
FEATURES = (1, 2, 3, 5, 8)
SEQUENCES = ((1, 1), (2, 3), (3, 1), (4, 5), (7, 2))  # (T, D)
#: Attention's (T, d), D = heads·d: T ≥ 2, as over one key the softmax is 1 and W_q, b_q, W_k
#: get exactly 0 whatever a layer computes (``bpcheck.layers.allowances.one_key``).
ATTENTION = ((2, 1), (3, 2), (2, 3), (4, 1), (5, 2))
NORMALISERS = ("batch_norm", "layer_norm")  # the layer before one has no bias
#: A gated layer's input scales: at 10 and above its units are all but always flat (saturated:
#: 115 of 315 draws of an LSTM at scales up to 10, 93 of 293 up to 100, measured), so left out;
#: attention's softmax likewise (60 of 303 draws saturated at every scale, measured).
GATED_SCALES = (1e-2, 1.0)


def is_yours(layer, item: Layer) -> bool:
    """Whether ``item`` of a drawn network is the user's ``layer`` (a ``UserLayer``)."""
    if layer.declared is None:
        return item.kind == layer.name
    return replace(item, name="") == layer.declared.layer


def _dead_below_zero(activation: str) -> bool:
    """Whether the activation's derivative is exactly 0 below zero (its record's ``dead``)."""
    name, parameter = parse_activation(activation)
    record = ACTIVATIONS[name]
    return record.dead is not None and bool(record.dead(np.array([-1.0]), parameter))


def _other(text: str, pinned: Layer) -> str:
    """``text``, one layer, made to differ from ``pinned`` (``nobias``) if it is the same."""
    return f"{text},nobias" if parse_layers(text)[0] == pinned else text


def _fits(pinned: Layer, shape: tuple[int, ...]) -> bool:
    """Whether the pinned layer takes samples of ``shape`` (a pooling window within them)."""
    try:
        output_shapes((pinned,), shape)
    except ValueError:
        return False
    return True


def sample_shapes(pinned: Layer, ranks: tuple[int, ...], length: int | None = None) -> list[tuple[int, ...]]:
    """The pool's sample shapes (IMAGES, FEATURES, SEQUENCES) for the ranks the layer takes;
    ``length``: every sequence's T pinned (the user's ``length=``)."""
    found = [(f,) for f in FEATURES] if 1 in ranks else []
    pool = tuple((t, pinned.heads * d) for t, d in ATTENTION) if pinned.kind == "attention" else SEQUENCES
    sequences = pool if length is None else sorted({(length, d) for _, d in pool})
    found += list(sequences) if 2 in ranks else []
    if 3 in ranks:
        side = next(s for s in range(1, 64) if _fits(pinned, (1, s, s)))
        found += [(c, side + h, side + w) for c, h, w in IMAGES]
    if pinned.kind == "layer_norm":  # over one or two values x̂ is 0 or ±1 whatever x is: flat
        found = [shape for shape in found if math.prod(shape) >= 3]
    return sorted(found, key=lambda shape: (len(shape) > 1, sum(shape)))


def structures(layer) -> list[Stack]:
    """Each pool shape alone, then inside a network (the hidden activation and the channels
    before it cycling), smallest first."""
    like = layer.declared
    shapes = [s for s in sample_shapes(like.layer, like.ranks, layer.length) if layer.fits_shape(s)]
    if not shapes:
        raise ValueError("your fits() refuses every sample shape bpcheck draws")
    alone = [Stack(f"{like.text};flatten", s, loss="half-sse", reduction="sum") for s in shapes]
    inside = []
    # a unit dead below 0 (relu) before a max pool zeroes whole windows: ties, left out (89 of
    # 305 draws, measured)
    hiddens = [h for h in HIDDEN if like.layer.kind != "max_pool2d" or not _dead_below_zero(h)]
    for i, shape in enumerate(shapes):
        spatial, hidden, tail = len(shape) == 3, hiddens[i % len(hiddens)], _other("dense:3", like.layer)
        if like.layer.kind == "embedding":  # it reads tokens: first
            inside.append(Stack(f"{like.text};{hidden};flatten;{tail}", shape))
            continue
        before = _other(f"conv2d:{shape[0]},k3,p1" if spatial else f"dense:{shape[-1]}", like.layer)
        if like.layer.kind in NORMALISERS:  # a bias it removes has a gradient of rounding alone
            before += "" if before.endswith("nobias") else ",nobias"
        if len(shape) == 2:  # a sequence: dense at every step, the loss at every step
            inside.append(Stack(f"{before};{hidden};{like.text};{tail}", (shape[0], 1 + i % 4)))
            continue
        text = f"{before};{hidden};{like.text};flatten;{tail}"
        inside.append(Stack(text, (1 + i % 3, *shape[1:]) if spatial else (1 + i % 4,)))
    return alone + inside


def like_scales(layer) -> tuple[float, ...]:
    """The input scales a like= layer's values are drawn at (``stack_values``)."""
    kind = layer.declared.layer.kind
    return GATED_SCALES if LAYER_KINDS[kind].gates or kind == "attention" else SCALES


def yours_drawn(layer, problem: StackProblem) -> StackProblem:
    """``problem`` (``random_problem``) with a like= ``layer``'s own inputs: an embedding's
    tokens with one repeated at least (the last slot takes the first's token where all differ:
    ``dW[x] = dout`` keeps only one of a repeated token's rows); each dropout mask of the
    user's layer read off its forward on ones (replayed: ``bpcheck.user.like_pair.replayed``),
    the entries it keeps. New arrays; what the user's forward raises, raised."""
    kind = layer.declared.layer.kind
    if kind == "embedding" and np.unique(problem.x).size == problem.x.size:
        x = problem.x.copy()
        x.reshape(-1)[-1] = x.reshape(-1)[0]
        return replace(problem, x=x)
    if kind != "dropout":
        return problem
    forward, dtype = layer.pair()[0], np.dtype(problem.stack.dtype)
    ones = {item: np.ones(problem.masks[item.name].shape, dtype)
            for item in walk(problem.stack.layers) if is_yours(layer, item)}
    masks = {item.name: (forward(x, {}, item)[0] != 0).astype(dtype) for item, x in ones.items()}
    return replace(problem, masks=problem.masks | masks)
