"""The MLP family's comparison: ask its witnesses (``Truth``), then compare every registered rule
with every witness, parameter by parameter (the rows and verdicts: ``bpcheck.core.compare``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from bpcheck.core.compare import (
    Row,
    RuleReport,
    Truth,
    check_comparison,
    check_type,
    gradient_row,
    update_row,
    with_reason,
)
from bpcheck.core.projected import PLACE_ENTRIES, PROJECTED, parts, projected_row
from bpcheck.core.tolerances import Conditioning, step_allowance
from bpcheck.core.witness_rows import compare_witnesses
from bpcheck.mlp.allowances import SENSITIVITY_WITNESS, finite_difference_entries, measure_allowances
from bpcheck.mlp.problem import Problem
from manual.rules import RULES, UpdateRule
from manual.spec import Params, param_shapes
from reference import WITNESSES
from reference.projection import direction_seed


@dataclass(frozen=True)
class MlpTruth(Truth):
    """``Truth`` plus the MLP's conditioning, from the float64 pre-activations
    (``bpcheck.core.tolerances.Conditioning``), which the diagnosis and the seed's tests read."""

    conditioning: Conditioning = field(kw_only=True)


def ask_witnesses(problem: Problem, finite_differences: bool | str = True, fd_sample: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> MlpTruth:
    """Gradients and SGD steps from the witnesses with an optimizer; from those that estimate
    (finite differences) their answer with its error: by projection (``finite_differences``
    True: along DIRECTIONS random directions per parameter, seeded by the problem's
    fingerprint, and entry by entry only on a parameter where torch disagrees with them, at most
    PLACE_ENTRIES entries), also on ``fd_sample`` random entries if given, or on every entry
    (``"all"``), or not at all (False; ``progress(done, total)`` counts entries); and the
    allowances measured by sensitivity reruns and same-dtype runs (``bpcheck.core.tolerances``)."""
    check_type("problem", problem, Problem, " (for a StackProblem, a network of layers: ask_stack_witnesses)")
    if finite_differences not in (True, False, "all"):
        raise ValueError(f"finite_differences={finite_differences!r} must be True, False or 'all'")
    p, fingerprint = problem.in_float64(), problem.fingerprint()
    args = (p.spec, p.params, p.X, p.Y)
    grads, steps, errors, projections = {}, {}, {}, {}
    # jax computes while torch does (its dispatch returns at once): its answer is waited for
    # after torch's gradients and reruns (no answer depends on the order)
    started = {name: witness.started_gradients_and_sgd_step(*args, p.lr)
               for name, witness in WITNESSES.items() if witness.started_gradients_and_sgd_step is not None}
    for name, witness in WITNESSES.items():
        if witness.gradients_and_sgd_step is not None:
            grads[name], steps[name] = (None, None) if name in started else (
                witness.gradients_and_sgd_step(*args, p.lr))

    def answers() -> list[Params]:
        for name, waiting in started.items():
            grads[name], steps[name] = waiting()
        return [grads[name] for name in steps]

    conditioning, *measured = measure_allowances(problem, grads[SENSITIVITY_WITNESS], answers)
    for name, witness in WITNESSES.items() if finite_differences else ():
        if witness.gradients_and_sgd_step is None and witness.gradients_with_error is not None:
            if finite_differences is True:
                from reference.numeric_directions import directional_with_error  # SciPy, on use
                projections[name] = directional_with_error(  # the step sized by torch's gradient
                    *args, direction_seed(fingerprint), expected=grads[SENSITIVITY_WITNESS])
            if finite_differences == "all" or fd_sample is not None:
                sample = None if finite_differences == "all" else fd_sample
                entries = finite_difference_entries(p.spec, sample)
                grads[name], errors[name] = witness.gradients_with_error(*args, entries, progress)
    truth = MlpTruth(grads, steps, errors, *measured, conditioning=conditioning,
                     problem=fingerprint, projections=projections)
    return placed(truth, problem) if projections and fd_sample is None else truth


def placed(truth: MlpTruth, problem: Problem) -> MlpTruth:
    """The truth with per-entry finite differences on each parameter where torch's gradient
    disagrees with finite differences by projection: PLACE_ENTRIES of its entries at most,
    drawn with the problem's seed, so the witnesses' rows show where they part."""
    torch = truth.gradients[SENSITIVITY_WITNESS]
    parted = [name for name in torch if parts(truth, PROJECTED, name, torch[name], truth.witness_allowance)]
    if not parted:
        return truth
    shapes = param_shapes(problem.spec)
    offsets = dict(zip(shapes, np.cumsum([0] + [int(np.prod(s)) for s in shapes.values()]), strict=False))
    rng = np.random.default_rng(direction_seed(truth.problem or ""))
    entries = np.sort(np.concatenate([offsets[name] + rng.choice(
        torch[name].size, size=min(PLACE_ENTRIES, torch[name].size), replace=False) for name in parted]))
    p = problem.in_float64()
    grads, errors = WITNESSES[PROJECTED].gradients_with_error(p.spec, p.params, p.X, p.Y, entries)
    return replace(truth, gradients=truth.gradients | {PROJECTED: grads}, errors={PROJECTED: errors})


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
            if witness not in truth.errors or np.isfinite(truth.gradients[witness][parameter]).any():
                report.rows.append(gradient_row(rule.name, truth, witness, parameter,
                                                 directions[parameter], allowance))
        for witness in truth.projections:
            report.rows.append(projected_row(rule.name, truth, witness, parameter, directions[parameter],
                                             allowance))
        for witness in truth.steps:
            report.rows.append(update_row(rule.name, problem, truth, witness, parameter,
                                           new_params[parameter], truth.allowance, dtype))
    report.rows.extend(placing_rows(rule.name, problem, truth, report.rows, directions, allowance))
    return with_reason(report, truth)


def placing_rows(name: str, problem: Problem, truth: Truth, rows: list[Row], directions: Params,
                 allowance: Params) -> list[Row]:
    """Where the rule's gradient differs from torch's on a parameter that finite differences saw
    only by projection: per-entry finite differences on its PLACE_ENTRIES entries that differ
    most, a row each, so the report says whether they side with torch or with the rule there."""
    torch = truth.gradients[SENSITIVITY_WITNESS]
    differing = [row.parameter for row in rows if row.differs and row.quantity == "gradient"
                 and row.witness == SENSITIVITY_WITNESS and PROJECTED in truth.projections
                 and not np.isfinite(truth.gradients.get(PROJECTED, {}).get(row.parameter, np.nan)).any()]
    if not differing:
        return []
    shapes = param_shapes(problem.spec)
    offsets = dict(zip(shapes, np.cumsum([0] + [int(np.prod(s)) for s in shapes.values()]), strict=False))
    with np.errstate(invalid="ignore"):
        entries = np.sort(np.concatenate([offsets[parameter] + np.argsort(-np.nan_to_num(np.abs(
            np.asarray(directions[parameter], np.float64) - torch[parameter]), nan=np.inf).ravel(),
            kind="stable")[:PLACE_ENTRIES] for parameter in differing]))
    p = problem.in_float64()
    grads, errors = WITNESSES[PROJECTED].gradients_with_error(p.spec, p.params, p.X, p.Y, entries)
    seen = replace(truth, gradients=truth.gradients | {PROJECTED: grads}, errors={PROJECTED: errors})
    return [gradient_row(name, seen, PROJECTED, parameter, directions[parameter], allowance)
            for parameter in differing]


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
