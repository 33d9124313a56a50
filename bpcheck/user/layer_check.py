"""Check a user's layer (``bpcheck.user.layer``): Hypothesis draws the layer alone and inside
small random networks, each compared with torch, jax and finite differences of both forwards
(``bpcheck.layers.compare``); the first disagreement, or exception, is shrunk to the smallest
network, then diagnosed layer by layer (``bpcheck.layers.diagnose``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from bpcheck.core.compare import RuleReport, row_dict
from bpcheck.core.runtime import frozen_heap, one_thread
from bpcheck.core.search import EXPLORE_AND_SHRINK
from bpcheck.core.tolerances import LAYER_DIAGNOSIS
from bpcheck.core.user_code import user_frame
from bpcheck.core.verdicts import AGREES, DIFFERS, INCONCLUSIVE, NOT_VERIFIED, RAISED, WITNESSES_DIFFER
from bpcheck.layers.compare import OWN_FORWARD, StackRule
from bpcheck.layers.diagnose import LayerFinding, diagnose_layers
from bpcheck.layers.probes import MOST_FLAT, compare_user_layer, flat_share, judged_gap
from bpcheck.layers.problem import StackProblem
from bpcheck.layers.strategies import HIDDEN, shapes, stack_problems
from bpcheck.user.layer import UserLayer, UserLayerError, guarded_call, registered
from manual import stack_network
from manual.stack import Stack, walk

#: Why a draw where most of your layer's outputs are flat (``bpcheck.layers.probes``) is not checked.
SATURATED_DRAW = ("your layer is saturated there: most of its outputs do not respond to its input "
                  "(a gated unit's input far from 0, a normalisation over two values)")


@dataclass
class LayerReport:
    """What checking a user's layer found."""

    layer: str
    verdict: str = AGREES  # AGREES, DIFFERS, WITNESSES_DIFFER, RAISED or NOT_VERIFIED (bpcheck.core.verdicts)
    examples: int = 0  # networks compared conclusively
    counterexample: StackProblem | Stack | None = None  # the smallest network it differs or raised on
    witness_rows: list = field(default_factory=list)  # where your torch and jax forwards disagree
    report: RuleReport | None = None  # the comparison there
    findings: list[LayerFinding] = field(default_factory=list)  # each layer alone, there
    error: UserLayerError | None = None
    discarded: Counter = field(default_factory=Counter)

    @property
    def passed(self) -> bool:
        return self.verdict == AGREES

    @property
    def backward_disagrees_with_own_forward(self) -> bool:
        return self.report is not None and any(row.differs for row in self.report.rows
                                               if row.witness == OWN_FORWARD)

    @property
    def forward_differs(self) -> bool:
        """Whether your NumPy forward differs from your torch forward, your layer alone."""
        return any(f.kind == self.layer and f.quantity == "forward" for f in self.findings)

    @property
    def message(self) -> str:
        """One paragraph: the verdict and what it means."""
        if self.verdict == AGREES:
            return (f"{self.layer}: agrees with torch, jax and finite differences on {self.examples} "
                    "random networks (alone and inside other layers), float64 and float32")
        if self.verdict == NOT_VERIFIED:
            reasons = "; ".join(f"{n} {why}" for why, n in self.discarded.most_common()) or "none drawn"
            return f"{self.layer}: NOT VERIFIED — no network could be checked ({reasons})"
        if self.verdict == RAISED:
            return f"{self.error} on the smallest network Hypothesis found"
        if self.verdict == WITNESSES_DIFFER:
            where = sorted({row.parameter for row in self.witness_rows})
            return (f"{self.layer}: your torch and jax forwards disagree (their gradients of "
                    f"{', '.join(where)} differ): they must compute the same function")
        where = sorted({row.parameter for row in self.report.rows if row.differs})
        own = {row.verdict for row in self.report.rows
               if row.witness == OWN_FORWARD and row.parameter in where}
        if self.backward_disagrees_with_own_forward:
            why = "your backward is not the gradient of your own forward"
        elif own == {AGREES} and self.forward_differs:
            why = ("your backward is the gradient of your own forward, but that forward differs from "
                   "your torch and jax forwards")
        elif own == {AGREES}:  # and your NumPy forward computes what your torch forward does
            why = ("your backward agrees with finite differences of your own forward, and that forward "
                   "with your torch forward, yet not with torch's and jax's gradients: a mistake "
                   "smaller than finite differences resolve, or rounding inside your layer beyond "
                   "what the allowances measured")
        else:
            why = "finite differences of your own forward could not tell whether it is the forward's fault"
        return f"{self.layer}: WRONG on {', '.join(where)} — {why}"

    def to_dict(self) -> dict:
        return {"layer": self.layer, "verdict": self.verdict, "passed": self.passed,
                "examples": self.examples, "message": str(self),
                "network": self._network(),
                "rows": [row_dict(row) for row in self.report.rows] if self.report else [],
                "findings": [asdict(f) for f in self.findings], "discarded": dict(self.discarded)}

    def _network(self) -> str | None:
        example = self.counterexample
        return example.describe() if isinstance(example, Stack) else example and example.stack.describe()

    def __str__(self) -> str:
        """The message, then (where it failed) the network, the rows that differ and the
        layer-by-layer diagnosis, as plain text."""
        lines = [self.message]
        if self.verdict == RAISED and self.error is not None:
            lines[0] = f"{self.layer}: your {self.error.part or 'code'} " + (
                f"raised {self.error.error!r}{user_frame(self.error.error)}" if self.error.part
                else f"returned the wrong thing: {self.error.error}")
        problem = self.counterexample
        if isinstance(problem, Stack):  # it raised while its values were drawn
            lines.append(f"on the smallest network Hypothesis found: {problem.describe()}, {problem.dtype}")
        if not isinstance(problem, StackProblem):
            return "\n".join(lines)
        lines.append(f"on the smallest network Hypothesis found: {problem.stack.describe()}, "
                     f"N={problem.n_samples}, {problem.stack.dtype}, loss {problem.stack.loss}/"
                     f"{problem.stack.reduction}")
        with np.printoptions(precision=6, threshold=200, linewidth=100):  # flattened, in C order
            lines += [f"  {name} {np.shape(v)} = {np.array2string(np.ravel(v), separator=', ')}"
                      for name, v in {"x": problem.x, "y": problem.y, **problem.params}.items()]
        rows = self.witness_rows or (self.report.rows if self.report is not None else [])
        if self.witness_rows:
            lines.append("your two forwards' gradients, torch's against jax's (the worst entry of each):")
            lines += [f"  {row.parameter}: rel err {row.error.rel:.3e} at {row.error.where}" for row in rows]
        elif self.report is not None:
            lines.append("what differs (relative to the witness's largest entry; the worst row of each):")
            for (quantity, parameter), rows in _differing(self.report).items():
                worst = max(rows, key=lambda row: row.error.rel)
                lines.append(f"  {quantity} of {parameter}: rel err {worst.error.rel:.3e} at "
                             f"{worst.error.where} (tolerance {worst.tolerance:.1e}), against "
                             + ", ".join(row.witness for row in rows))
        if self.findings:
            lines.append("each layer alone against torch (float64, a random dout):")
            lines += [f"  {f.layer} ({f.kind}) {f.quantity}: rel err {f.error:.2e} — " + (
                "; ".join(f.explained_by) or ("your layer differs here" if f.kind == self.layer
                                              else "no nearby layer explains it")) for f in self.findings]
        return "\n".join(lines)


def _differing(report: RuleReport) -> dict[tuple[str, str], list]:
    """The rows that differ, by (quantity, parameter), in the report's order."""
    grouped: dict[tuple[str, str], list] = {}
    for row in report.rows:
        if row.differs:
            grouped.setdefault((row.quantity, row.parameter), []).append(row)
    return grouped


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
    if layer.fits is not None and not guarded_call(layer.name, "fits", layer.fits, shape):
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
    if layer.fits is not None and not guarded_call(layer.name, "fits", layer.fits, shape):
        raise ValueError(f"your fits() refuses samples of shape {shape}")
    if not draw(st.booleans()):  # shrinks to the layer alone
        return Stack(f"{layer.name};flatten", shape, loss="half-sse", reduction="sum", dtype=dtype)
    text = f"dense:{shape[1]};{draw(st.sampled_from(HIDDEN))};{layer.name};dense:3"
    return Stack(text, (shape[0], draw(st.integers(1, 5))), dtype=dtype)


def check_layer(layer: UserLayer, examples: int = 50, seed: int = 0) -> LayerReport:
    """Search ``examples`` random networks with ``layer`` for one where the derived network
    (your layer's pair among the built-in ones) disagrees with a witness; shrink it; diagnose."""
    found = LayerReport(layer.name)
    with registered(layer):
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
            except UserLayerError as error:
                found.verdict, found.error, found.counterexample, found.report = RAISED, error, stack, None
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
                found.verdict, found.counterexample, found.report = WITNESSES_DIFFER, problem, report
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
                found.verdict, found.counterexample, found.report = DIFFERS, problem, report
                found.error, found.witness_rows = None, []  # a shrunk example replaces an earlier one
                raise AssertionError(f"{layer.name} differs")

        try:
            with one_thread(), frozen_heap():
                search()
        except Unsatisfiable:
            found.verdict = NOT_VERIFIED
        except UserLayerError as error:  # raised where no draw recorded it: no draw's rows either
            found.verdict, found.error, found.counterexample, found.report = RAISED, error, None, None
            found.witness_rows = []
        except AssertionError:
            pass
        if found.verdict == AGREES and not found.examples:
            found.verdict = NOT_VERIFIED
        if found.verdict == DIFFERS:
            found.findings = diagnose_layers(rule, found.counterexample)
    return found
