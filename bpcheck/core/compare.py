"""The family-blind comparison: what the witnesses say (``Truth``), one row per rule ×
quantity × parameter × witness and its verdict, a rule's report, and the witnesses checked
against each other. Each family's ``compare`` asks its witnesses and builds these rows."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np

from bpcheck.core.metrics import Discrepancy, comparison_scale, discrepancy, relative
from bpcheck.core.tolerances import (
    INFORMATIVE,
    conclusive,
    finite_difference_allowance,
    informative,
    step_allowance,
)
from bpcheck.core.verdicts import AGREES, DIFFERS, INCONCLUSIVE
from manual.spec import Params
from reference import SENSITIVITY_WITNESS


@dataclass(frozen=True)
class Truth:
    """What the witnesses say, all in float64, and the allowances measured for this problem.
    A family adds what only it measures in a subclass (``bpcheck.mlp.compare.MlpTruth``)."""

    gradients: dict[str, Params]
    steps: dict[str, Params]
    errors: dict[str, Params]  # estimated absolute error, of the witnesses that estimate
    allowance: Params  # e_i for a rule computed in the problem's dtype (bpcheck.core.tolerances)
    witness_allowance: Params  # e_i between float64 witnesses (sensitivity reruns only)
    floor: float  # the underflow floor inside ``allowance``
    saturation: str  # why zeros cannot be judged: the most saturated unit, or nothing flowing
    # back (``bpcheck.mlp.allowances.no_flow_reason``); said when a verdict is inconclusive
    flows_back: bool = True  # some data gradient is not exactly 0; if none is, no gradient row
    # can settle anything, not even one holding a penalty's λθ
    problem: str | None = field(default=None, kw_only=True)  # the fingerprint of the problem
    # the witnesses answered (``Problem.fingerprint``): a truth is refused for any other problem
    projections: dict[str, dict] = field(default_factory=dict, kw_only=True)  # witness →
    # parameter → ``reference.projection.Projected``: finite differences along random directions
    derived: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # what rows
    # compute from this truth alone, kept for the next row (``bpcheck.core.projected``); a
    # replaced truth starts anew

    def conclusive(self) -> bool:
        """Whether every parameter's allowance can tell a wrong gradient from rounding."""
        return self.flows_back and all(
            conclusive(self.allowance[name], self.gradients[SENSITIVITY_WITNESS][name], self.floor,
                       bool(self.saturation)) for name in self.allowance)


@dataclass(frozen=True)
class Row:
    """One rule × quantity × parameter × witness comparison."""

    rule: str
    quantity: str  # "gradient" (what the rule subtracts, over η) or "update" (θ − θ′)
    parameter: str
    shape: tuple[int, ...]
    witness: str
    error: Discrepancy
    tolerance: float  # the largest allowance, in the units of error.rel
    verdict: str  # AGREES, DIFFERS or INCONCLUSIVE (bpcheck.core.tolerances)
    checked: int  # entries compared (fewer than the shape holds where finite differences sampled)
    directions: int = 0  # random directions compared along (``bpcheck.core.projected``); 0: by entry
    reason: str = ""  # why a projected row is inconclusive

    @property
    def agrees(self) -> bool:
        return self.verdict == AGREES

    @property
    def differs(self) -> bool:
        return self.verdict == DIFFERS


def overall(rows: list[Row]) -> str:
    """DIFFERS if any row differs; else agrees if every parameter's gradient is settled by
    some witness (a conclusive row that agrees), else inconclusive. Update rows can only add
    DIFFERS: a step below the dtype's resolution of θ is inconclusive for every rule."""
    if any(row.differs for row in rows):
        return DIFFERS
    return INCONCLUSIVE if unsettled(rows) else AGREES


def unsettled(rows: list[Row]) -> list[str]:
    """Parameters whose gradient no witness could settle (what makes a verdict inconclusive)."""
    gradients = [row for row in rows if row.quantity == "gradient"]
    return sorted({row.parameter for row in gradients} - {row.parameter for row in gradients if row.agrees})


class Rule(Protocol):
    """What a report needs of a rule, in every family (``manual.rules.UpdateRule``,
    ``bpcheck.layers.compare.StackRule``): its name and whether it claims to be correct."""

    name: str
    claims_correct: bool


@dataclass
class RuleReport:
    """All comparisons of one rule on one problem."""

    rule: Rule
    rows: list[Row] = field(default_factory=list)
    unsupported: str | None = None
    saturation: str = ""  # why the problem's zeros cannot be judged (``Truth.saturation``)

    @property
    def verdict(self) -> str:
        return "unsupported" if self.unsupported else overall(self.rows)

    @property
    def agrees(self) -> bool:
        return self.verdict == AGREES

    @property
    def as_claimed(self) -> bool:
        """A rule claiming correctness must not differ; unsupported specs are not a failure."""
        return self.unsupported is not None or not self.rule.claims_correct or self.verdict != DIFFERS

    def to_dict(self) -> dict:
        return {
            "rule": self.rule.name, "claims_correct": self.rule.claims_correct,
            "unsupported": self.unsupported, "verdict": self.verdict, "agrees": self.agrees,
            "saturation": self.saturation, "rows": [row_dict(row) for row in self.rows],
        }


def row_dict(row: Row) -> dict:
    return asdict(row) | {"agrees": row.agrees}


def row_verdict(candidate: np.ndarray, reference: np.ndarray, allowed: np.ndarray,
             floor: float, saturated: bool = False, scale: np.ndarray | None = None) -> tuple[str, float]:
    """The row's verdict (``bpcheck.core.tolerances``), and its largest allowance in ``rel`` units;
    ``scale`` is the exact quantity the allowance must be small against (default: reference).
    Entries whose truth or allowance is not finite are not judged; the others can still differ,
    and a candidate that is not finite where the truth is differs whatever the allowance."""
    scale = reference if scale is None else scale
    candidate = np.asarray(candidate, np.float64)
    reach = comparison_scale(candidate, reference)[0]  # the units of the row's rel err
    judged = np.isfinite(reference) & np.isfinite(allowed)
    tolerance = relative(float(np.max(allowed, where=judged, initial=0.0)), reach)
    with np.errstate(invalid="ignore"):  # inf − inf where both overflowed: unjudged anyway
        gap = np.abs(candidate - reference)
    if np.any(judged & ~(gap <= allowed)) or np.any(np.isfinite(reference) & ~np.isfinite(candidate)):
        return DIFFERS, tolerance
    if not np.all(judged):
        return INCONCLUSIVE, tolerance
    return (AGREES if conclusive(allowed, scale, floor, saturated) else INCONCLUSIVE), tolerance


def judged(candidate: np.ndarray, reference: np.ndarray, allowed: np.ndarray, floor: float,
           saturated: bool = False, scale: np.ndarray | None = None) -> tuple[str, float, Discrepancy]:
    """``row_verdict``'s (verdict, tolerance) and ``discrepancy(candidate, reference)``, the same
    values, sharing |a − b| and the largest entries where every entry of ``reference`` and
    ``allowed`` is finite (each row's common case: a dozen reductions fewer)."""
    candidate, reference = np.asarray(candidate, np.float64), np.asarray(reference, np.float64)
    allowed = np.asarray(allowed, np.float64)
    largest = float(np.abs(reference).max(initial=0.0))
    if not (candidate.shape == reference.shape == allowed.shape and math.isfinite(largest)
            and np.isfinite(allowed).all()):
        return (*row_verdict(candidate, reference, allowed, floor, saturated, scale),
                discrepancy(candidate, reference))
    reach, truth_zero = comparison_scale(candidate, reference, largest)
    widest = float(allowed.max(initial=0.0))
    with np.errstate(invalid="ignore"):  # inf − inf: NaN, which differs (the truth is finite)
        gap = np.abs(candidate - reference)
    if not (gap <= allowed).all():  # a non-finite candidate too: its gap is never ≤ a finite allowance
        verdict = DIFFERS
    elif scale is None:
        verdict = AGREES if informative(widest, largest, floor, saturated) else INCONCLUSIVE
    else:
        verdict = AGREES if conclusive(allowed, scale, floor, saturated) else INCONCLUSIVE
    error = discrepancy(candidate, reference, gap, (reach, truth_zero, largest))
    return verdict, relative(widest, reach), error


def gradient_row(name: str, truth: Truth, witness: str, parameter: str, candidate: np.ndarray,
                  allowance: Params) -> Row:
    reference, allowed = truth.gradients[witness][parameter], allowance[parameter]
    candidate = np.asarray(candidate, np.float64)
    exact = truth.gradients[SENSITIVITY_WITNESS][parameter]  # not a noisy estimate's scale
    if witness not in truth.errors:  # a witness's own gradient: every entry checked
        if not truth.flows_back:  # only λθ beside zeros: nothing of the backward pass to judge
            exact = np.zeros_like(exact)
        verdict, tolerance, error = judged(candidate, reference, allowed, truth.floor, bool(truth.saturation),
                                           None if exact is reference else exact)
        return Row(name, "gradient", parameter, reference.shape, witness, error, tolerance, verdict,
                   reference.size)
    checked = np.isfinite(reference)  # an estimate, maybe of sampled entries (the others are NaN)
    scale = float(np.max(np.abs(exact), initial=0.0))
    allowed = finite_difference_allowance(truth.errors[witness][parameter], allowed, reference, scale)
    exact = exact[checked] if truth.flows_back else np.zeros(int(checked.sum()))
    verdict, tolerance = row_verdict(candidate[checked], reference[checked], allowed[checked], truth.floor,
                                  bool(truth.saturation), exact)
    filled = np.where(checked, reference, candidate)  # unchecked entries count as no error
    return Row(name, "gradient", parameter, reference.shape, witness,
               discrepancy(candidate, filled), tolerance, verdict, int(checked.sum()))


def update_row(name: str, problem, truth: Truth, witness: str, parameter: str,
                new_value: np.ndarray, allowance: Params, dtype: str) -> Row:
    old = np.asarray(problem.params[parameter], dtype=np.float64)
    reference_new = truth.steps[witness][parameter]
    allowed = step_allowance(dtype, truth.floor, problem.lr, reference_new, allowance[parameter])
    candidate, reference = old - np.asarray(new_value, np.float64), old - reference_new
    verdict, tolerance, error = judged(candidate, reference, allowed, truth.floor, bool(truth.saturation))
    return Row(name, "update", parameter, old.shape, witness, error, tolerance, verdict, old.size)


def with_reason(report: RuleReport, truth: Truth) -> RuleReport:
    """The report, its ``saturation`` never empty when its verdict is inconclusive: the truth's
    reason if it has one, else ``unsettled_reason``."""
    if report.verdict == INCONCLUSIVE and not report.saturation:
        report.saturation = unsettled_reason(report.rows, truth)
    return report


def check_type(argument: str, value, expected: type, example: str = "") -> None:
    """A TypeError naming ``argument`` unless ``value`` is an ``expected``."""
    if not isinstance(value, expected):
        raise TypeError(f"{argument}={value!r:.80} is a {type(value).__name__}; expected a "
                        f"{expected.__name__}{example}")


def check_comparison(rule, rule_type: type, problem, problem_type: type, truth, truth_type: type,
                     rule_example: str = "") -> None:
    """Refuse a rule, problem or truth of the wrong type (``rule_example``: how to get a rule),
    and a truth the witnesses gave for another problem (its fingerprint,
    ``Problem.fingerprint``): held against it, a correct rule would differ."""
    for argument, value, expected, example in (("rule", rule, rule_type, rule_example),
                                               ("problem", problem, problem_type, ""),
                                               ("truth", truth, truth_type, "")):
        check_type(argument, value, expected, f" (e.g. {example})" if example else "")
    if truth.problem is not None and truth.problem != problem.fingerprint():
        raise ValueError("truth is the witnesses' answer for another problem (its fingerprint "
                         f"{truth.problem[:12]}…, this problem's {problem.fingerprint()[:12]}…): ask "
                         "the witnesses about this problem: ask_witnesses(problem)")


def unsettled_reason(rows: list[Row], truth: Truth) -> str:
    """Why the gradients no witness settled are not, where the truth names no reason (nothing
    saturated, something flows back): per parameter, an exact gradient that is not finite, or
    one that is exactly 0 with an allowance above the floor, else its allowance against its
    largest entry — above INFORMATIVE, so the rounding a correct rule may show in this dtype is
    as large as a real error (a sum that cancels to its rounding level)."""
    parts = []
    for parameter in unsettled(rows):
        exact = truth.gradients[SENSITIVITY_WITNESS][parameter]
        if not np.all(np.isfinite(exact)):
            parts.append(f"{parameter}'s exact gradient is not finite")
            continue
        widest = max((row.tolerance for row in rows if row.parameter == parameter
                      and row.quantity == "gradient" and row.witness == SENSITIVITY_WITNESS), default=np.inf)
        parts.append(f"{parameter}'s allowance is {widest:.2g} of its largest entry" if np.any(exact)
                     else f"{parameter}'s exact gradient is 0 and its allowance is not")
    return ("rounding is as large as a real error here: " + "; ".join(parts)
            + f" (at most {INFORMATIVE:g} settles a gradient)")
