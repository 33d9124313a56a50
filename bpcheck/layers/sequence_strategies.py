"""Hypothesis strategies for sequence models (``manual.stack``): each sequence layer on its own,
and small random sequence networks.

Hypothesis draws the structure — sequence length T 1–5 (MAX_STEPS), features and hidden sizes
1–3, heads dividing the features, causal or not, with or without projections and biases,
vocabularies of 1–3 tokens with more token slots than tokens (N·T > V: some token repeats,
so an embedding's gradient must accumulate), batch 1–4 — with every size capped so a failure
shrinks to the smallest layer. Values are seeded as for every network of layers
(``bpcheck.layers.strategies.stack_problems``), at LAYER_SCALES for a layer alone and the networks'
scales in networks (saturated gates are inconclusive by design, and tested on their own); a
per-step loss gets a padding mask from random lengths 1…T
(``bpcheck.layers.problem.random_problem``).
"""

from __future__ import annotations

from hypothesis import strategies as st

from bpcheck.layers.problem import StackProblem
from bpcheck.layers.strategies import HIDDEN, NETWORK_SCALES, single_layer_problems, stack_problems
from manual.stack import LAYER_KINDS, SEQUENCE_KINDS, Stack

MAX_STEPS, MAX_FEATURES, MAX_VOCAB = 5, 3, 3
#: A sequence layer alone sees inputs at 10⁻² or 1: at 10 its gates (or, without projections,
#: its scores x·x) already saturate often, and such a draw is inconclusive by design.
LAYER_SCALES = (1e-2, 1.0)
RECURRENT_KINDS = tuple(name for name, kind in LAYER_KINDS.items() if kind.gates)


@st.composite
def sequence_layer(draw, kind: str, features: int) -> str:
    """One recurrent layer or attention on (T, features) samples, as text."""
    bias = "" if draw(st.booleans()) else ",nobias"
    if kind in RECURRENT_KINDS:
        return f"{kind}:{draw(st.integers(1, MAX_FEATURES))}{bias}"
    heads = draw(st.sampled_from([h for h in (1, 2, 3) if features % h == 0]))
    causal = ",causal" if draw(st.booleans()) else ""
    projections = draw(st.booleans())
    return f"attention:h{heads}{causal}" + (bias if projections else ",noproj")


@st.composite
def sequence_layer_problems(draw, kind: str, dtype: str = "float64") -> StackProblem:
    """One sequence layer alone, then flatten, under ½Σ(out − y)² on random targets (the loss
    hands the layer a dout of its own); an embedding reads tokens with some token repeated."""
    if kind == "embedding":
        vocab = draw(st.integers(1, MAX_VOCAB))
        text = f"embedding:{draw(st.integers(1, MAX_FEATURES))},v{vocab}"
        shape: tuple[int, ...] = (draw(st.integers(vocab + 1, MAX_STEPS + 1)),)  # N·T > V
    else:
        features = draw(st.integers(1, MAX_FEATURES))
        features *= draw(st.integers(1, 2)) if kind == "attention" else 1  # room for 2 or 3 heads
        shape = (draw(st.integers(1, MAX_STEPS)), features)
        text = draw(sequence_layer(kind, features))
    stack = Stack(f"{text};flatten", shape, loss="half-sse", reduction="sum", dtype=dtype)
    return draw(stack_problems(stack, scales=LAYER_SCALES))


def layer_problems(kind: str, dtype: str = "float64"):
    """A layer of any built-in kind alone: ``single_layer_problems`` or, for a sequence kind,
    ``sequence_layer_problems``."""
    return (sequence_layer_problems if kind in SEQUENCE_KINDS else single_layer_problems)(kind, dtype)


@st.composite
def sequence_networks(draw, dtype: str = "float64") -> Stack:
    """[embedding] then 1–2 of (rnn | lstm | gru | attention) [activation] [dropout], then a
    dense layer at every step (a per-step loss, padded steps masked) or flatten and dense,
    under a loss on labels or values."""
    steps = draw(st.integers(1, MAX_STEPS))
    features = draw(st.integers(1, MAX_FEATURES))
    items = []
    if draw(st.booleans()):
        items.append(f"embedding:{features},v{draw(st.integers(1, MAX_VOCAB))}")
        shape: tuple[int, ...] = (steps,)
    else:
        shape = (steps, features)
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from([*RECURRENT_KINDS, "attention"]))
        items.append(draw(sequence_layer(kind, features)))
        if kind != "attention":
            features = int(items[-1].split(":")[1].split(",")[0])
        if draw(st.booleans()):
            items.append(draw(st.sampled_from(HIDDEN)))
        if draw(st.booleans()):
            items.append(f"dropout:p{draw(st.sampled_from([0.25, 0.5]))}")
    classes = draw(st.integers(2, 3))
    items += [f"dense:{classes}"] if draw(st.booleans()) else ["flatten", f"dense:{classes}"]
    loss = draw(st.sampled_from(["softmax-ce-labels", "half-sse"]))
    return Stack(";".join(items), shape, loss=loss, reduction=draw(st.sampled_from(["mean", "sum"])),
                 dtype=dtype)


@st.composite
def sequence_problems(draw, dtype: str = "float64") -> StackProblem:
    """A random sequence network and values for it, at the networks' scales."""
    return draw(stack_problems(draw(sequence_networks(dtype)), scales=NETWORK_SCALES))
