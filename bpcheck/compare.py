"""Compare every registered rule with every witness, parameter by parameter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from bpcheck.allowances import (
    SENSITIVITY_WITNESS,
    finite_difference_entries,
    measure_allowances,
)
from bpcheck.metrics import Discrepancy, comparison_scale, discrepancy, relative
from bpcheck.problem import Problem
from bpcheck.tolerances import (
    INFORMATIVE,
    Conditioning,
    conclusive,
    finite_difference_allowance,
    step_allowance,
)
from bpcheck.verdicts import AGREES, DIFFERS, INCONCLUSIVE
from manual.rules import RULES, UpdateRule
from manual.spec import Params
from reference import WITNESSES


@dataclass(frozen=True)
class Truth:
    """What the witnesses say, all in float64, and the allowances measured for this problem."""

    gradients: dict[str, Params]
    steps: dict[str, Params]
    errors: dict[str, Params]  # estimated absolute error, of the witnesses that estimate
    conditioning: Conditioning  # from the float64 pre-activations
    magnitudes: Params  # S of the worst-case bound (kept for comparison, not the allowance)
    allowance: Params  # e_i for a rule computed in the problem's dtype (bpcheck.tolerances)
    witness_allowance: Params  # e_i between float64 witnesses (sensitivity reruns only)
    floor: float  # the underflow floor inside ``allowance``
    saturation: str  # why zeros cannot be judged: the most saturated unit, or nothing flowing
    # back (``bpcheck.allowances.no_flow_reason``); said when a verdict is inconclusive
    flows_back: bool = True  # some data gradient is not exactly 0; if none is, no gradient row
    # can settle anything, not even one holding a penalty's λθ
    problem: str | None = field(default=None, kw_only=True)  # the fingerprint of the problem
    # the witnesses answered (``Problem.fingerprint``): a truth is refused for any other problem

    def conclusive(self) -> bool:
        """Whether every parameter's allowance can tell a wrong gradient from rounding."""
        return self.flows_back and all(
            conclusive(self.allowance[name], self.gradients[SENSITIVITY_WITNESS][name], self.floor,
                       bool(self.saturation)) for name in self.allowance)


def ask_witnesses(problem: Problem, finite_differences: bool = True, fd_sample: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> Truth:
    """Gradients and SGD steps from the witnesses with an optimizer; from those that estimate
    (finite differences) gradients with their error unless turned off (on ``fd_sample`` random
    entries if given; ``progress(done, total)`` after each block); and the allowances measured
    by sensitivity reruns and same-dtype runs (``bpcheck.tolerances``)."""
    check_type("problem", problem, Problem, " (for a StackProblem, a network of layers: ask_stack_witnesses)")
    p = problem.in_float64()
    args = (p.spec, p.params, p.X, p.Y)
    grads, steps, errors = {}, {}, {}
    for name, witness in WITNESSES.items():
        if witness.gradients_and_sgd_step is not None:
            grads[name], steps[name] = witness.gradients_and_sgd_step(*args, p.lr)
        elif witness.gradients_with_error is not None and finite_differences:
            entries = finite_difference_entries(p.spec, fd_sample)
            grads[name], errors[name] = witness.gradients_with_error(*args, entries, progress)
    measured = measure_allowances(problem, grads[SENSITIVITY_WITNESS], [grads[name] for name in steps])
    return Truth(grads, steps, errors, *measured, problem=problem.fingerprint())


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
    verdict: str  # AGREES, DIFFERS or INCONCLUSIVE (bpcheck.tolerances)
    checked: int  # entries compared (fewer than the shape holds where finite differences sampled)

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


@dataclass
class RuleReport:
    """All comparisons of one rule on one problem."""

    rule: UpdateRule
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


def _verdict(candidate: np.ndarray, reference: np.ndarray, allowed: np.ndarray,
             floor: float, saturated: bool = False, scale: np.ndarray | None = None) -> tuple[str, float]:
    """The row's verdict (``bpcheck.tolerances``), and its largest allowance in ``rel`` units;
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


def _gradient_row(name: str, truth: Truth, witness: str, parameter: str, candidate: np.ndarray,
                  allowance: Params) -> Row:
    reference, allowed = truth.gradients[witness][parameter], allowance[parameter]
    candidate = np.asarray(candidate, np.float64)
    checked = np.ones(reference.shape, bool)
    if witness in truth.errors:  # an estimate, maybe of sampled entries (the others are NaN)
        checked = np.isfinite(reference)
        scale = float(np.max(np.abs(truth.gradients[SENSITIVITY_WITNESS][parameter]), initial=0.0))
        allowed = finite_difference_allowance(truth.errors[witness][parameter], allowed, reference, scale)
    exact = truth.gradients[SENSITIVITY_WITNESS][parameter][checked]  # not a noisy estimate's scale
    if not truth.flows_back:  # only λθ beside zeros: nothing of the backward pass to judge
        exact = np.zeros_like(exact)
    verdict, tolerance = _verdict(candidate[checked], reference[checked], allowed[checked], truth.floor,
                                  bool(truth.saturation), exact)
    filled = np.where(checked, reference, candidate)  # unchecked entries count as no error
    return Row(name, "gradient", parameter, reference.shape, witness,
               discrepancy(candidate, filled), tolerance, verdict, int(checked.sum()))


def _update_row(name: str, problem: Problem, truth: Truth, witness: str, parameter: str,
                new_value: np.ndarray, allowance: Params, dtype: str) -> Row:
    old = np.asarray(problem.params[parameter], dtype=np.float64)
    reference_new = truth.steps[witness][parameter]
    allowed = step_allowance(dtype, truth.floor, problem.lr, reference_new, allowance[parameter])
    candidate, reference = old - np.asarray(new_value, np.float64), old - reference_new
    verdict, tolerance = _verdict(candidate, reference, allowed, truth.floor, bool(truth.saturation))
    return Row(name, "update", parameter, old.shape, witness, discrepancy(candidate, reference),
               tolerance, verdict, old.size)


def rule_allowance(truth: Truth, problem: Problem, from_step: bool) -> Params:
    """What a rule's gradient may be off by per entry: the truth's allowance, plus, for
    directions implied by a step (``from_step``), θ′'s rounding over η ((θ − θ′)/η carries it)."""
    if not from_step:
        return truth.allowance
    return {name: allowed + step_allowance(problem.spec.dtype, truth.floor, problem.lr,
                                           truth.steps[SENSITIVITY_WITNESS][name], 0.0) / problem.lr
            for name, allowed in truth.allowance.items()}


def compare_rule(rule: UpdateRule, problem: Problem, truth: Truth,
                 evaluated: tuple[Params, Params] | None = None) -> RuleReport:
    """Rows for the rule's gradient (every witness) and its update (framework optimizers);
    ``evaluated``: the rule's (directions, new parameters) on this problem, if already known."""
    check_comparison(rule, UpdateRule, problem, Problem, truth, Truth)
    reason = rule.unsupported_reason(problem.spec)
    if reason:
        return RuleReport(rule, unsupported=reason)
    args = (problem.spec, problem.params, problem.X, problem.Y, problem.lr)
    directions, new_params = evaluated if evaluated is not None else rule.directions_and_step(*args)
    report, dtype = RuleReport(rule, saturation=truth.saturation), problem.spec.dtype
    allowance = rule_allowance(truth, problem, rule.directions_from_step)
    for parameter in problem.params:
        for witness in truth.gradients:
            report.rows.append(_gradient_row(rule.name, truth, witness, parameter,
                                             directions[parameter], allowance))
        for witness in truth.steps:
            report.rows.append(_update_row(rule.name, problem, truth, witness, parameter,
                                           new_params[parameter], truth.allowance, dtype))
    return with_reason(report, truth)


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


def check_comparison(rule, rule_type: type, problem, problem_type: type, truth, truth_type: type) -> None:
    """Refuse a rule, problem or truth of the wrong type, and a truth the witnesses gave for
    another problem (its fingerprint, ``Problem.fingerprint``): held against it, a correct rule
    would differ."""
    for argument, value, expected in (("rule", rule, rule_type), ("problem", problem, problem_type),
                                      ("truth", truth, truth_type)):
        check_type(argument, value, expected, " (e.g. RULES['derived'])" if expected is UpdateRule else "")
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


def compare_witnesses(problem: Problem, truth: Truth) -> list[Row]:
    """The witnesses checked against the sensitivity witness (torch): they must agree among
    themselves, in float64; an estimate is judged by its own error estimate."""
    rows, f64, allowance, base = [], problem.in_float64(), truth.witness_allowance, SENSITIVITY_WITNESS
    for witness, gradients in truth.gradients.items():
        for parameter, candidate in gradients.items() if witness != base else ():
            if witness in truth.errors:
                rows.append(_gradient_row(f"{base} vs {witness}", truth, witness, parameter,
                                          truth.gradients[base][parameter], allowance))
            else:
                rows.append(_gradient_row(f"{witness} vs {base}", truth, base, parameter, candidate,
                                          allowance))
    for witness, steps in truth.steps.items():
        for parameter, new_value in steps.items() if witness != base else ():
            rows.append(_update_row(f"{witness} vs {base}", f64, truth, base, parameter, new_value,
                                    allowance, "float64"))
    return rows


def compare_all(problem: Problem, rule_names: list[str] | None = None,
                **witness_options) -> tuple[list[RuleReport], list[Row]]:
    """Ask the witnesses once (``witness_options`` as ``ask_witnesses`` takes them), then compare
    each chosen rule (default: all registered)."""
    unknown = [name for name in rule_names or () if name not in RULES]
    if isinstance(rule_names, str) or unknown:
        raise ValueError(f"rule_names={rule_names!r} must be a list of the names in RULES: "
                         f"{', '.join(RULES)}")
    truth = ask_witnesses(problem, **witness_options)
    rules = [RULES[name] for name in (rule_names or RULES)]
    return [compare_rule(rule, problem, truth) for rule in rules], compare_witnesses(problem, truth)
