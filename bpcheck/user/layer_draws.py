"""The networks a user's layer is drawn in (``bpcheck.user.layer_check``, and
``bpcheck.user.own_forward`` for a layer with its NumPy forward alone): the layer alone or inside
a small stack, its values, and what a search of them found (``settled``)."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from bpcheck.core.search import Verdict
from bpcheck.core.user_code import UserCodeError
from bpcheck.core.verdicts import NOT_VERIFIED, RAISED
from bpcheck.layers.problem import StackProblem, random_problem
from bpcheck.layers.strategies import HIDDEN, SCALES, away_from_kinks_and_ties, shapes, stack_values
from bpcheck.user.layer import UserLayer
from bpcheck.user.like_draws import like_networks, like_scales, yours_drawn
from bpcheck.user.report import CheckReport
from manual.stack import Stack

#: The sample shapes a user's layer is drawn on: C ≤ 6 channels (sides ≤ 7) or F ≤ 8 features,
#: wider than the built-in layers' draws, for mistakes that need several groups of channels.
USER_CHANNELS, USER_FEATURES = 6, 8
USER_STEPS = 5  # and T ≤ 5 steps for a sequence layer (rank 2)
#: N ≥ 3 samples, as for the built-in batch norm: a normalisation over two values gives x̂ = ±1
#: whatever x is, so every gradient through it is a cancellation (a correct float32 batch norm
#: of a user's was 1.2× over its allowance on x there, seen); bpcheck cannot tell a user's layer
#: normalises over the batch, so every user layer is drawn with three samples at least.
USER_BATCH = 3


@st.composite
def networks(draw, layer: UserLayer):
    """The layer alone (then flatten) under ½Σ(out − y)², or inside a small conv or dense stack
    under softmax cross-entropy; float64 or float32. The layer's input shape is drawn first, and
    only shapes its ``fits`` takes."""
    dtype = draw(st.sampled_from(["float64", "float32"]))
    if layer.declared is not None:
        return draw(like_networks(layer, dtype))
    if layer.rank == 2:
        return draw(sequence_networks(layer, dtype))
    spatial = layer.rank == 3 or (layer.rank is None and draw(st.booleans()))
    shape = draw(shapes(spatial, USER_CHANNELS, USER_FEATURES))
    if not layer.fits_shape(shape):
        raise ValueError(f"your fits() refuses samples of shape {shape}")
    if not draw(st.booleans()):  # False, where Hypothesis shrinks to: the layer alone
        return Stack(f"{layer.name};flatten", shape, loss="half-sse", reduction="sum", dtype=dtype)
    before_shape = draw(shapes(spatial, 3, 5))  # the stack before it turns this into ``shape``
    before = f"conv2d:{shape[0]},k3,p1" if spatial else f"dense:{shape[0]}"
    if spatial:
        before_shape = (before_shape[0], *shape[1:])
    text = f"{before};{draw(st.sampled_from(HIDDEN))};{layer.name};flatten;dense:3"
    return Stack(text, before_shape, dtype=dtype)


@st.composite
def sequence_networks(draw, layer: UserLayer, dtype: str):
    """A sequence layer (rank 2) alone (then flatten) under ½Σ(out − y)², or after a dense layer
    at every step and a hidden activation, under softmax cross-entropy at every step."""
    steps = layer.length or draw(st.integers(1, USER_STEPS))
    shape = (steps, draw(st.integers(1, USER_FEATURES)))
    if not layer.fits_shape(shape):
        raise ValueError(f"your fits() refuses samples of shape {shape}")
    if not draw(st.booleans()):  # shrinks to the layer alone
        return Stack(f"{layer.name};flatten", shape, loss="half-sse", reduction="sum", dtype=dtype)
    text = f"dense:{shape[1]};{draw(st.sampled_from(HIDDEN))};{layer.name};dense:3"
    return Stack(text, (shape[0], draw(st.integers(1, 5))), dtype=dtype)


@dataclass(frozen=True)
class Draw:
    """One draw of ``draws``: a network with the layer and its values' (N, seed, scale), or
    why there is none (the layer does not fit the input drawn, or its ``fits`` raised)."""

    stack: Stack | None
    values: tuple[int, int, float] = (0, 0, 1.0)
    unbuilt: str = ""
    error: UserCodeError | None = None


@st.composite
def draws(draw, layer: UserLayer) -> Draw:
    """A network with ``layer`` (``networks``) and its values; building the problem, which runs
    your forward (the kink filter), is left to the judge, so what your code raises there is the
    search's to shrink."""
    try:
        stack = draw(networks(layer))
    except ValueError as error:  # the layer does not fit this input: not this draw
        return Draw(None, unbuilt=f"not built ({error})")
    except UserCodeError as error:  # your fits() raised
        return Draw(None, error=error)
    like = layer.declared is not None
    scales = like_scales(layer) if like else SCALES
    n, seed, scale = draw(stack_values(stack, min_batch=USER_BATCH, scales=scales))
    if like:  # one batch size: one jax compile per structure of the pool
        n = USER_BATCH
    return Draw(stack, (n, seed, scale))


@st.composite
def float64_draws(draw, layer: UserLayer) -> Draw:
    """``draws`` in float64 (``bpcheck.user.own_forward``: a NumPy forward alone, no witness of
    a float32 backward's rounding)."""
    try:
        stack = draw(networks(layer)).replace(dtype="float64")
    except ValueError as error:
        return Draw(None, unbuilt=f"not built ({error})")
    except UserCodeError as error:
        return Draw(None, error=error)
    return Draw(stack, draw(stack_values(stack, min_batch=USER_BATCH)))


def drawn_problem(drawn: Draw, discard, layer: UserLayer | None = None) -> StackProblem:
    """The problem of a draw (``draws``): what your code raised is raised, a draw that built
    no network or lies within a kink or tie is discarded (``discard(reason)``); a like=
    ``layer``'s own inputs in it (``bpcheck.user.like_draws.yours_drawn``: tokens, masks)."""
    if drawn.error is not None:
        raise drawn.error
    if drawn.stack is None:
        discard(drawn.unbuilt)
    n, values_seed, scale = drawn.values
    problem = random_problem(drawn.stack, n, values_seed, scale=scale)  # runs your forward
    if layer is not None and layer.declared is not None:
        problem = yours_drawn(layer, problem)
    if not away_from_kinks_and_ties(problem):
        discard("within a kink or a tie")
    return problem


def settled(found: CheckReport, verdict: Verdict, last: dict) -> bool:
    """``found`` given the search's counts and its RAISED or NOT VERIFIED verdict, or the
    counterexample and comparison of the last disagreement (``last``): True then, the caller
    naming the verdict."""
    found.examples, found.discarded = verdict.examples, verdict.discarded
    if verdict.raised is not None:
        found.verdict, found.error, found.part = RAISED, verdict.raised, verdict.part
        found.counterexample = verdict.raised_on.stack if verdict.raised_on is not None else None
    elif verdict.failure is not None:
        found.counterexample, found.comparison = last["problem"], last["report"]
        return True
    elif not found.examples:
        found.verdict = NOT_VERIFIED
    return False
