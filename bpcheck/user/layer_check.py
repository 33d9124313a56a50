"""Check a user's layer (``bpcheck.user.layer``): Hypothesis draws the layer alone and inside
small random networks, each compared with torch, jax and finite differences of both forwards
(``bpcheck.layers.compare``); the first disagreement, or exception, is shrunk to the smallest
network, then diagnosed layer by layer (``bpcheck.layers.diagnose``)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, reject, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from bpcheck.core.runtime import frozen_heap, one_thread
from bpcheck.core.search import EXPLORE_AND_SHRINK
from bpcheck.core.tolerances import LAYER_DIAGNOSIS
from bpcheck.core.user_code import UserCodeError
from bpcheck.core.verdicts import AGREES, DIFFERS, INCONCLUSIVE, NOT_VERIFIED, RAISED, WITNESSES_DIFFER, WRONG
from bpcheck.layers.compare import StackRule
from bpcheck.layers.diagnose import diagnose_layers
from bpcheck.layers.probes import MOST_FLAT, compare_user_layer, flat_share, judged_gap
from bpcheck.layers.strategies import HIDDEN, shapes, stack_problems
from bpcheck.user.layer import UserLayer
from bpcheck.user.layer_report import layer_message
from bpcheck.user.registry import REGISTRY
from bpcheck.user.report import CheckReport
from manual import stack_network
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


@st.composite
def _networks(draw, layer: UserLayer):
    """The layer alone (then flatten) under ½Σ(out − y)², or inside a small conv or dense stack
    under softmax cross-entropy; float64 or float32. The layer's input shape is drawn first, and
    only shapes its ``fits`` takes."""
    dtype = draw(st.sampled_from(["float64", "float32"]))
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
    shape = (draw(st.integers(1, USER_STEPS)), draw(st.integers(1, USER_FEATURES)))
    if not layer.fits_shape(shape):
        raise ValueError(f"your fits() refuses samples of shape {shape}")
    if not draw(st.booleans()):  # shrinks to the layer alone
        return Stack(f"{layer.name};flatten", shape, loss="half-sse", reduction="sum", dtype=dtype)
    text = f"dense:{shape[1]};{draw(st.sampled_from(HIDDEN))};{layer.name};dense:3"
    return Stack(text, (shape[0], draw(st.integers(1, 5))), dtype=dtype)


def check_layer(layer: UserLayer, examples: int = 50, seed: int = 0) -> CheckReport:
    """Search ``examples`` random networks with ``layer`` for one where the derived network
    (your layer's pair among the built-in ones) disagrees with a witness; shrink it; diagnose.
    The report's verdict is agrees, WRONG, WITNESSES DIFFER, RAISED or NOT VERIFIED."""
    found = CheckReport(layer.name, AGREES, 0, "", kind="layer")
    with REGISTRY.scoped(layer):
        rule = StackRule(layer.name, f"your layer {layer.name} among the derived layers",
                         pairs=dict(stack_network.PAIRS))

        @hypothesis_seed(seed)
        @settings(max_examples=examples, deadline=None, database=None, print_blob=False,
                  report_multiple_bugs=False, phases=EXPLORE_AND_SHRINK,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
        @given(data=st.data())
        def search(data) -> None:
            try:
                stack = data.draw(_networks(layer))
            except ValueError as error:  # the layer does not fit this input: not this draw
                found.discarded[f"not built ({error})"] += 1
                reject()
            name = next(item.name for item in walk(stack.layers) if item.kind == layer.name)
            try:  # drawing the values runs the forward (the kink filter): it may raise too
                problem = data.draw(stack_problems(stack, min_batch=USER_BATCH))
                share, gain = flat_share(problem, name)
                saturated = share > MOST_FLAT
                if not saturated:
                    report, witness_rows, truth = compare_user_layer(problem, rule, name, gain)
            except UserCodeError as error:
                found.verdict, found.counterexample, found.comparison = RAISED, stack, None
                found.error, found.part = error.error, error.part
                raise
            if saturated:  # layer_probes: most of its outputs do not respond to its input
                found.discarded[SATURATED_DRAW] += 1
                reject()
            # the reruns perturb your layer's input and output, not its insides: torch's and jax's
            # gradients of it are held to the layer-alone threshold, a different function's O(1),
            # on the entries they judge (not where float32 lost them: a saturated unit inside)
            forwards = [row for row in witness_rows if row.differs and row.rule.startswith("jax vs")]
            apart = [row for row in forwards
                     if judged_gap(truth.gradients, truth.witness_allowance, row.parameter) > LAYER_DIAGNOSIS]
            if apart:  # your two forwards disagree
                found.verdict, found.counterexample, found.comparison = WITNESSES_DIFFER, problem, report
                found.witness_rows = apart
                raise AssertionError(f"{layer.name}'s witnesses differ")
            if report.verdict != DIFFERS and any(row.differs for row in witness_rows):
                found.discarded["finite differences disagree with torch and jax (a kink? declare kinks=)"
                                if not forwards else "torch's and jax's gradients differ by rounding inside "
                                "your layer (a cancellation the reruns cannot see)"] += 1
                reject()
            if report.verdict == INCONCLUSIVE:  # counted by its reason's first clause
                found.discarded[f"inconclusive: {report.saturation.split(':')[0]}" if report.saturation
                                else "inconclusive"] += 1
                reject()
            found.examples += 1
            if report.verdict == DIFFERS:
                found.verdict, found.counterexample, found.comparison = WRONG, problem, report
                found.error = found.part = None  # a shrunk example replaces an earlier one
                found.witness_rows = []
                raise AssertionError(f"{layer.name} differs")

        try:
            with one_thread(), frozen_heap():
                search()
        except Unsatisfiable:
            found.verdict = NOT_VERIFIED
        except UserCodeError as error:  # raised where no draw recorded it: no draw's rows either
            found.verdict, found.counterexample, found.comparison = RAISED, None, None
            found.error, found.part, found.witness_rows = error.error, error.part, []
        except AssertionError:
            pass
        if found.verdict == AGREES and not found.examples:
            found.verdict = NOT_VERIFIED
        if found.verdict == WRONG:
            found.findings = diagnose_layers(rule, found.counterexample)
            found.rows = [row for row in found.comparison.rows if row.differs]
    found.message = layer_message(found)
    return found
