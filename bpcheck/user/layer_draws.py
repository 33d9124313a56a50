"""The networks a user's layer is drawn in (``bpcheck.user.layer_check``, and
``bpcheck.user.own_forward`` for a layer with its NumPy forward alone): the layer alone or inside
a small stack, its values, and what a search of them found (``settled``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from hypothesis import strategies as st

from bpcheck.core.search import Verdict
from bpcheck.core.user_code import UserCodeError
from bpcheck.core.verdicts import NOT_VERIFIED, RAISED
from bpcheck.layers.problem import StackProblem, random_problem
from bpcheck.layers.strategies import HIDDEN, SCALES, away_from_kinks_and_ties, stack_values
from bpcheck.user.layer import UserLayer
from bpcheck.user.like_draws import like_scales, structures, yours_drawn
from bpcheck.user.report import CheckReport
from manual.stack import Stack

#: The sample shapes a layer of the user's own kind is drawn on, smallest first (where Hypothesis
#: shrinks to): C ≤ 6 channels and sides ≤ 7, F ≤ 8 features, wider than the built-in layers'
#: draws, for mistakes that need several groups of channels; (T, D) with T ≤ 5 steps. A fixed
#: pool, as a like= layer's (``bpcheck.user.like_draws``): jax compiles its witness once per
#: structure and keeps it on disk (rms_norm, 200 networks: 127 compiles when every shape was
#: drawn afresh, measured); the values are drawn afresh every time.
USER_IMAGES = ((1, 1, 1), (2, 2, 3), (1, 4, 4), (3, 3, 5), (6, 2, 2), (2, 5, 5), (4, 7, 3), (5, 6, 7))
USER_FEATURES = (1, 2, 3, 4, 5, 6, 8)
USER_SEQUENCES = ((1, 1), (2, 3), (3, 1), (4, 5), (5, 2), (3, 8))
#: N = 3 samples, as for the built-in batch norm: a normalisation over two values gives x̂ = ±1
#: whatever x is, so every gradient through it is a cancellation (a correct float32 batch norm
#: of a user's was 1.2× over its allowance on x there, seen); bpcheck cannot tell a user's layer
#: normalises over the batch, so every user layer is drawn with three samples (one batch size:
#: one jax compile per structure of the pool).
USER_BATCH = 3


def pool(layer: UserLayer) -> list[Stack]:
    """The structures a layer is drawn in: the layer alone (then flatten) under ½Σ(out − y)²,
    or inside a small conv or dense stack under softmax cross-entropy (``custom_structures``,
    or a like= layer's ``bpcheck.user.like_draws.structures``)."""
    return structures(layer) if layer.declared is not None else custom_structures(layer)


def built_once(layer: UserLayer) -> Callable[[], list[Stack]]:
    """``pool(layer)``, built on the first call and kept (its 30-odd stacks cost 6.5 ms a draw,
    8 % of a search of rms_norm, profiled); what building it raised — your ``fits`` refusing
    every shape, or raising — is raised again at every call, as each draw reports it."""
    kept: list[tuple[list[Stack] | None, Exception | None, TracebackType | None]] = []

    def structures_of_the_layer() -> list[Stack]:
        if not kept:
            try:
                kept.append((pool(layer), None, None))
            except (ValueError, UserCodeError) as error:
                kept.append((None, error, error.__traceback__))
        built, error, traceback = kept[0]
        if error is not None:  # with its first traceback, not one grown by every draw's raise
            raise error.with_traceback(traceback)
        return built
    return structures_of_the_layer


def user_shapes(layer: UserLayer) -> list[tuple[int, ...]]:
    """The pool's sample shapes for the layer's rank (images and features where it has none),
    T pinned to its ``length``, those its ``fits`` takes; smallest first."""
    if layer.rank == 2:
        pinned = {(layer.length, d) for _, d in USER_SEQUENCES}
        found = USER_SEQUENCES if layer.length is None else sorted(pinned)
    else:
        found = [*((f,) for f in USER_FEATURES if layer.rank in (None, 1)),
                 *(image for image in USER_IMAGES if layer.rank in (None, 3))]
    return sorted((s for s in found if layer.fits_shape(s)), key=lambda shape: (len(shape) > 1, sum(shape)))


def custom_structures(layer: UserLayer) -> list[Stack]:
    """Each shape of ``user_shapes`` alone, then inside a network: after conv2d:C,k3,p1 or
    dense:F (dense at every step for a sequence, the loss at every step) and a hidden activation
    (cycling, as the input's channels or features before it do)."""
    shapes = user_shapes(layer)
    if not shapes:
        raise ValueError("your fits() refuses every sample shape bpcheck draws")
    alone = [Stack(f"{layer.name};flatten", s, loss="half-sse", reduction="sum") for s in shapes]
    inside = []
    for i, shape in enumerate(shapes):
        hidden = HIDDEN[i % len(HIDDEN)]
        if len(shape) == 2:
            inside.append(Stack(f"dense:{shape[1]};{hidden};{layer.name};dense:3", (shape[0], 1 + i % 5)))
        elif len(shape) == 3:
            inside.append(Stack(f"conv2d:{shape[0]},k3,p1;{hidden};{layer.name};flatten;dense:3",
                                (1 + i % 3, *shape[1:])))
        else:
            inside.append(Stack(f"dense:{shape[0]};{hidden};{layer.name};flatten;dense:3", (1 + i % 5,)))
    return alone + inside


@dataclass(frozen=True)
class Draw:
    """One draw of ``draws``: a network with the layer and its values' (N, seed, scale), or
    why there is none (the layer does not fit the input drawn, or its ``fits`` raised)."""

    stack: Stack | None
    values: tuple[int, int, float] = (0, 0, 1.0)
    unbuilt: str = ""
    error: UserCodeError | None = None


def draws(layer: UserLayer, dtype: str | None = None) -> st.SearchStrategy[Draw]:
    """A network with ``layer`` (one of ``pool``'s, built once for the search) in ``dtype`` if
    given (float64 for a NumPy forward alone, ``bpcheck.user.own_forward``, with no witness of a
    float32 backward's rounding), else in float64 or float32, and its values; building the
    problem, which runs your forward (the kink filter), is left to the judge, so what your code
    raises there is the search's to shrink."""
    return _draws(layer, dtype, built_once(layer))


@st.composite
def _draws(draw, layer: UserLayer, dtype: str | None, structures_of_the_layer: Callable[[], list[Stack]]
           ) -> Draw:
    try:
        # drawn where dtype is given too: one seed draws the same network either way
        drawn_dtype = draw(st.sampled_from(["float64", "float32"]))
        stack = draw(st.sampled_from(structures_of_the_layer())).replace(dtype=dtype or drawn_dtype)
    except ValueError as error:  # the layer does not fit this input: not this draw
        return Draw(None, unbuilt=f"not built ({error})")
    except UserCodeError as error:  # your fits() raised
        return Draw(None, error=error)
    scales = like_scales(layer) if layer.declared is not None else SCALES
    _, seed, scale = draw(stack_values(stack, min_batch=USER_BATCH, scales=scales))
    return Draw(stack, (USER_BATCH, seed, scale))


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
