"""The MLP family's comparison: ask its witnesses (``Truth``), then compare every registered rule
with every witness, parameter by parameter (the rows and verdicts: ``bpcheck.core.compare``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bpcheck.core.compare import (
    Row,
    RuleReport,
    Truth,
    check_comparison,
    check_type,
    compare_witnesses,
    gradient_row,
    update_row,
    with_reason,
)
from bpcheck.core.tolerances import Conditioning, step_allowance
from bpcheck.mlp.allowances import SENSITIVITY_WITNESS, finite_difference_entries, measure_allowances
from bpcheck.mlp.problem import Problem
from manual.rules import RULES, UpdateRule
from manual.spec import Params
from reference import WITNESSES


@dataclass(frozen=True)
class MlpTruth(Truth):
    """``Truth`` plus the MLP's conditioning, from the float64 pre-activations
    (``bpcheck.core.tolerances.Conditioning``), which the diagnosis and the seed's tests read."""

    conditioning: Conditioning = field(kw_only=True)


def ask_witnesses(problem: Problem, finite_differences: bool = True, fd_sample: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> MlpTruth:
    """Gradients and SGD steps from the witnesses with an optimizer; from those that estimate
    (finite differences) gradients with their error unless turned off (on ``fd_sample`` random
    entries if given; ``progress(done, total)`` after each block); and the allowances measured
    by sensitivity reruns and same-dtype runs (``bpcheck.core.tolerances``)."""
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
    conditioning, *measured = measure_allowances(problem, grads[SENSITIVITY_WITNESS],
                                                 [grads[name] for name in steps])
    return MlpTruth(grads, steps, errors, *measured, conditioning=conditioning,
                    problem=problem.fingerprint())


def rule_allowance(truth: MlpTruth, problem: Problem, from_step: bool) -> Params:
    """What a rule's gradient may be off by per entry: the truth's allowance, plus, for
    directions implied by a step (``from_step``), θ′'s rounding over η ((θ − θ′)/η carries it)."""
    if not from_step:
        return truth.allowance
    return {name: allowed + step_allowance(problem.spec.dtype, truth.floor, problem.lr,
                                           truth.steps[SENSITIVITY_WITNESS][name], 0.0) / problem.lr
            for name, allowed in truth.allowance.items()}


def compare_rule(rule: UpdateRule, problem: Problem, truth: MlpTruth,
                 evaluated: tuple[Params, Params] | None = None) -> RuleReport:
    """Rows for the rule's gradient (every witness) and its update (framework optimizers);
    ``evaluated``: the rule's (directions, new parameters) on this problem, if already known."""
    check_comparison(rule, UpdateRule, problem, Problem, truth, MlpTruth, "RULES['derived']")
    reason = rule.unsupported_reason(problem.spec)
    if reason:
        return RuleReport(rule, unsupported=reason)
    args = (problem.spec, problem.params, problem.X, problem.Y, problem.lr)
    directions, new_params = evaluated if evaluated is not None else rule.directions_and_step(*args)
    report, dtype = RuleReport(rule, saturation=truth.saturation), problem.spec.dtype
    allowance = rule_allowance(truth, problem, rule.directions_from_step)
    for parameter in problem.params:
        for witness in truth.gradients:
            report.rows.append(gradient_row(rule.name, truth, witness, parameter,
                                             directions[parameter], allowance))
        for witness in truth.steps:
            report.rows.append(update_row(rule.name, problem, truth, witness, parameter,
                                           new_params[parameter], truth.allowance, dtype))
    return with_reason(report, truth)


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
