"""Check a user's layer (``bpcheck.user.layer``): Hypothesis draws the layer alone and inside
small random networks, each compared with torch, jax and finite differences of both forwards
(``bpcheck.layers.compare``); the first disagreement, or exception, is shrunk to the smallest
network, then diagnosed layer by layer (``bpcheck.layers.diagnose``)."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

from hypothesis import strategies as st

from bpcheck.core.compare import RuleReport
from bpcheck.core.search import search
from bpcheck.core.tolerances import LAYER_DIAGNOSIS
from bpcheck.core.user_code import UserCodeError
from bpcheck.core.verdicts import AGREES, DIFFERS, INCONCLUSIVE, NOT_VERIFIED, RAISED, WITNESSES_DIFFER, WRONG
from bpcheck.layers.compare import StackRule, compare_stack_rule, swapped
from bpcheck.layers.diagnose import diagnose_layers
from bpcheck.layers.probes import MOST_FLAT, compare_user_layer, flat_share, judged_gap
from bpcheck.layers.problem import random_problem
from bpcheck.layers.strategies import (
    HIDDEN,
    SCALES,
    away_from_kinks_and_ties,
    shapes,
    stack_values,
)
from bpcheck.user.layer import UserLayer, dtype_slips
from bpcheck.user.layer_report import layer_message
from bpcheck.user.like_draws import is_yours, like_networks, like_scales
from bpcheck.user.like_pair import as_yours
from bpcheck.user.registry import REGISTRY
from bpcheck.user.report import CheckReport
from manual.stack import Stack, walk

#: Why a draw where most of your layer's outputs are flat (``bpcheck.layers.probes``) is not checked.
SATURATED_DRAW = ("your layer is saturated there: most of its outputs do not respond to its input "
                  "(a gated unit's input far from 0, a normalisation over two values)")


#: The sample shapes a user's layer is drawn on: C ≤ 6 channels (sides ≤ 7) or F ≤ 8 features,
#: wider than the built-in layers' draws, for mistakes that need several groups of channels.
USER_CHANNELS, USER_FEATURES = 6, 8
USER_STEPS = 5  # and T ≤ 5 steps for a sequence layer (rank 2)
#: N ≥ 3 samples, as for the built-in batch norm: a normalisation over two values gives x̂ = ±1
#: whatever x is, so every gradient through it is a cancellation (a correct float32 batch norm
#: of a user's was 1.2× over its allowance on x there, seen); bpcheck cannot tell a user's layer
#: normalises over the batch, so every user layer is drawn with three samples at least.
USER_BATCH = 3
RANK_WORDS = {1: "(N, F)", 2: "(N, T, D)", 3: "images"}


@st.composite
def _networks(draw, layer: UserLayer):
    """The layer alone (then flatten) under ½Σ(out − y)², or inside a small conv or dense stack
    under softmax cross-entropy; float64 or float32. The layer's input shape is drawn first, and
    only shapes its ``fits`` takes."""
    dtype = draw(st.sampled_from(["float64", "float32"]))
    if layer.declared is not None:
        return draw(like_networks(layer, dtype))
    if layer.rank == 2:
        return draw(_sequence_networks(layer, dtype))
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
def _sequence_networks(draw, layer: UserLayer, dtype: str):
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
class _Draw:
    """One draw of ``_draws``: a network with the layer and its values' (N, seed, scale), or
    why there is none (the layer does not fit the input drawn, or its ``fits`` raised)."""

    stack: Stack | None
    values: tuple[int, int, float] = (0, 0, 1.0)
    unbuilt: str = ""
    error: UserCodeError | None = None


@st.composite
def _draws(draw, layer: UserLayer) -> _Draw:
    """A network with ``layer`` (``_networks``) and its values; building the problem, which runs
    your forward (the kink filter), is left to the judge, so what your code raises there is the
    search's to shrink."""
    try:
        stack = draw(_networks(layer))
    except ValueError as error:  # the layer does not fit this input: not this draw
        return _Draw(None, unbuilt=f"not built ({error})")
    except UserCodeError as error:  # your fits() raised
        return _Draw(None, error=error)
    like = layer.declared is not None
    scales = like_scales(layer) if like else SCALES
    n, seed, scale = draw(stack_values(stack, min_batch=USER_BATCH, scales=scales))
    if like:  # one batch size: one jax compile per structure of the pool
        n = USER_BATCH
    return _Draw(stack, (n, seed, scale))


def check_layer(layer: UserLayer, examples: int = 50, seed: int = 0) -> CheckReport:
    """Search ``examples`` random networks with ``layer`` (``bpcheck.core.search``) for one where
    the derived network (your layer's pair among the built-in ones) disagrees with a witness;
    shrink it; diagnose. The report's verdict is agrees, WRONG, WITNESSES DIFFER, RAISED or
    NOT VERIFIED; its notes say where your arrays' dtype was more precise than the check's
    (compared after rounding: ``bpcheck.user.layer.dtype_slips``)."""
    with dtype_slips() as slips:
        found = _check(layer, examples, seed)
    found.notes += slips
    return found


def _check(layer: UserLayer, examples: int, seed: int) -> CheckReport:
    """``check_layer`` but for the dtype notes."""
    if layer.torch is None and layer.declared is None:  # your NumPy forward alone: finite differences
        from bpcheck.user.own_forward import check_own_forward
        return check_own_forward(layer, examples, seed)
    found = CheckReport(layer.name, AGREES, 0, "", kind="layer", like=layer.like or "")
    last: dict = {}  # the last disagreement's problem, witness rows and whether the forwards differ
    like = layer.declared
    with REGISTRY.scoped(layer) if like is None else nullcontext():  # like=: a kind known already
        swaps = {like.layer.kind: layer.pair()} if like else {}
        rule = StackRule(layer.name, f"your layer {layer.name} among the derived layers",
                         pairs=swapped(swaps))

        def judge(drawn: _Draw, discard) -> RuleReport:
            if drawn.error is not None:
                raise drawn.error
            if drawn.stack is None:
                discard(drawn.unbuilt)
            n, values_seed, scale = drawn.values
            problem = random_problem(drawn.stack, n, values_seed, scale=scale)  # runs your forward
            if not away_from_kinks_and_ties(problem):
                discard("within a kink or a tie")
            name = next(item.name for item in walk(drawn.stack.layers) if is_yours(layer, item))
            share, gain = flat_share(problem, name)
            if share > MOST_FLAT:  # layer_probes: most of its outputs do not respond to its input
                discard(SATURATED_DRAW)
            # like=: the witnesses compute the kind itself, so finite differences of your own
            # forward (most of a draw's time) only tell a wrong forward from a wrong backward:
            # taken where the gradients differ
            report, witness_rows, truth = compare_user_layer(problem, rule, name, gain, like is None)
            if like is not None and report.verdict == DIFFERS:
                report = compare_stack_rule(rule, problem, truth)
            # the reruns perturb your layer's input and output, not its insides: torch's and jax's
            # gradients of it are held to the layer-alone threshold, a different function's O(1),
            # on the entries they judge (not where float32 lost them: a saturated unit inside)
            forwards = [row for row in witness_rows if row.differs and row.rule.startswith("jax vs")]
            apart = [row for row in forwards
                     if judged_gap(truth.gradients, truth.witness_allowance, row.parameter) > LAYER_DIAGNOSIS]
            if apart:  # your two forwards disagree: a disagreement of its own kind
                last.update(problem=problem, report=report, apart=apart)
                return RuleReport(rule, apart)
            if report.verdict != DIFFERS and any(row.differs for row in witness_rows):
                discard("finite differences disagree with torch and jax (a kink? declare kinks=)"
                        if not forwards else "torch's and jax's gradients differ by rounding inside "
                        "your layer (a cancellation the reruns cannot see)")
            if report.verdict == INCONCLUSIVE:  # counted by its reason's first clause
                discard(f"inconclusive: {report.saturation.split(':')[0]}" if report.saturation
                        else "inconclusive")
            if report.verdict == DIFFERS:
                last.update(problem=problem, report=report, apart=[])
            return report

        verdict = search(layer.name, _draws(layer), judge, examples, seed, keep_errors=True)
        found.examples, found.discarded = verdict.examples, verdict.discarded
        if verdict.raised is not None:
            found.verdict, found.error, found.part = RAISED, verdict.raised, verdict.part
            found.counterexample = verdict.raised_on.stack if verdict.raised_on is not None else None
        elif verdict.failure is not None:
            found.counterexample, found.comparison = last["problem"], last["report"]
            found.witness_rows = last["apart"]
            found.verdict = WITNESSES_DIFFER if found.witness_rows else WRONG
        elif not found.examples:
            found.verdict = NOT_VERIFIED
        if found.verdict == WRONG:  # while the layer is registered: the diagnosis runs it
            found.findings = diagnose_layers(rule, found.counterexample)
            if like is not None:  # its arrays as your code gets them
                problem = found.counterexample
                found.yours = as_yours(like, problem.stack, problem.params, problem.x)
            found.rows = [row for row in found.comparison.rows if row.differs]
    found.message = layer_message(found, like.names if like else None)
    if like is not None and found.verdict == RAISED and len(like.ranks) > 1:
        drawn = " and ".join(RANK_WORDS[r] for r in like.ranks)
        found.message += (f" (bpcheck draws {like.layer.kind} on {drawn}: if your layer takes one of "
                          "them only, say which, e.g. rank=1 or layout='NCHW')")
    return found
