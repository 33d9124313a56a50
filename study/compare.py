"""Compare every registered rule with every witness, parameter by parameter."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from manual.rules import RULES, UpdateRule
from manual.spec import Params, Spec, check_learning_rate, check_problem
from reference import WITNESSES, numeric
from study.metrics import Discrepancy, discrepancy, relative
from study.tolerances import (
    Conditioning,
    conditioning,
    finite_difference_allowance,
    gradient_allowance,
    magnitudes,
    step_allowance,
)

#: Witnesses whose SGD step comes from a framework's optimizer (numeric has none).
STEP_WITNESSES = ("torch", "jax")


@dataclass(frozen=True)
class Problem:
    """One evaluation point: a network, its parameters, a batch and a learning rate."""

    spec: Spec
    params: Params
    X: np.ndarray
    Y: np.ndarray
    lr: float

    def __post_init__(self) -> None:
        check_problem(self.spec, self.params, self.X, self.Y)
        check_learning_rate(self.lr)

    @property
    def n_samples(self) -> int:
        return self.X.shape[1] if self.spec.layout == "cols" else self.X.shape[0]

    def in_float64(self) -> Problem:
        """The same values, exactly, in float64: what every witness computes with. A float64
        problem is already that (validation guarantees its arrays' dtype), so it is returned as is."""
        if self.spec.dtype == "float64":
            return self
        cast = {name: np.asarray(p, dtype=np.float64) for name, p in self.params.items()}
        Y = self.Y.astype(np.float64) if np.issubdtype(self.Y.dtype, np.floating) else self.Y
        return Problem(self.spec.replace(dtype="float64"), cast, self.X.astype(np.float64), Y, self.lr)


@dataclass(frozen=True)
class Truth:
    """What the witnesses say, all in float64."""

    gradients: dict[str, Params]
    steps: dict[str, Params]
    fd_error: Params  # estimated absolute error of the finite-difference gradients
    conditioning: Conditioning  # from the float64 pre-activations
    magnitudes: Params  # S: the scale rounding errors are measured against, per entry


def ask_witnesses(problem: Problem, finite_differences: bool = True) -> Truth:
    """Gradients and SGD steps from the frameworks; finite differences unless turned off."""
    p = problem.in_float64()
    args = (p.spec, p.params, p.X, p.Y)
    grads, steps, fd_error = {}, {}, {}
    for name in STEP_WITNESSES:
        grads[name], steps[name] = WITNESSES[name].gradients_and_sgd_step(*args, p.lr)
    if finite_differences:
        grads["numeric"], fd_error = numeric.gradients_with_error(*args)
    return Truth(grads, steps, fd_error, *rounding_context(p))


def rounding_context(problem: Problem) -> tuple[Conditioning, Params]:
    """The conditioning and the magnitudes S that gradient tolerances are measured against."""
    p = problem.in_float64()
    inputs, zs, output = numeric.forward(p.spec, p.params, p.X)
    targets = p.Y if p.spec.layout == "rows" else p.Y.T
    if targets.ndim == 1:  # class labels
        targets = np.eye(p.spec.sizes[-1])[targets]
    return conditioning(p.spec, zs, output), magnitudes(p.spec, p.params, inputs, output, targets)


def gradient_error_bound(problem: Problem) -> Params:
    """Per entry, the gradient allowance in the problem's dtype: how far a correct gradient
    computed in that dtype may be from the float64 truth."""
    cond, scale = rounding_context(problem)
    return {name: gradient_allowance(problem.spec, problem.n_samples, problem.spec.dtype,
                                     scale[name], cond) for name in scale}


@dataclass(frozen=True)
class Row:
    """One rule × quantity × parameter × witness comparison."""

    rule: str
    quantity: str  # "gradient" (what the rule subtracts, over η) or "update" (θ − θ′)
    parameter: str
    shape: tuple[int, ...]
    witness: str
    error: Discrepancy
    tolerance: float  # in the units of error.rel
    agrees: bool


@dataclass
class RuleReport:
    """All comparisons of one rule on one problem."""

    rule: UpdateRule
    rows: list[Row] = field(default_factory=list)
    unsupported: str | None = None

    @property
    def agrees(self) -> bool:
        return self.unsupported is None and all(row.agrees for row in self.rows)

    @property
    def as_claimed(self) -> bool:
        """A rule claiming correctness must agree; unsupported specs are not a failure."""
        return self.unsupported is not None or not self.rule.claims_correct or self.agrees

    def to_dict(self) -> dict:
        return {
            "rule": self.rule.name, "claims_correct": self.rule.claims_correct,
            "unsupported": self.unsupported, "agrees": self.agrees,
            "rows": [asdict(row) for row in self.rows],
        }


def _verdict(candidate: np.ndarray, reference: np.ndarray, allowed: np.ndarray) -> tuple[bool, float]:
    """Whether every entry is within its allowance, and the allowance in ``rel`` units."""
    agrees = bool(np.all(np.abs(np.asarray(candidate, np.float64) - reference) <= allowed))
    return agrees, relative(float(np.max(allowed, initial=0.0)), float(np.abs(reference).max(initial=0.0)))


def _gradient_row(name: str, problem: Problem, truth: Truth, witness: str,
                  parameter: str, candidate: np.ndarray) -> Row:
    reference = truth.gradients[witness][parameter]
    spec, n, dtype = problem.spec, problem.n_samples, problem.spec.dtype
    allowed = gradient_allowance(spec, n, dtype, truth.magnitudes[parameter], truth.conditioning)
    if witness == "numeric":
        allowed = finite_difference_allowance(spec, n, dtype, truth.fd_error[parameter],
                                              truth.magnitudes[parameter], truth.conditioning)
    agrees, tolerance = _verdict(candidate, reference, allowed)
    return Row(name, "gradient", parameter, reference.shape, witness,
               discrepancy(candidate, reference), tolerance, agrees)


def _update_row(name: str, problem: Problem, truth: Truth, witness: str,
                parameter: str, new_value: np.ndarray) -> Row:
    old = np.asarray(problem.params[parameter], dtype=np.float64)
    reference_new = truth.steps[witness][parameter]
    allowed = step_allowance(problem.spec, problem.n_samples, problem.spec.dtype, problem.lr,
                             reference_new, truth.magnitudes[parameter], truth.conditioning)
    candidate, reference = old - np.asarray(new_value, np.float64), old - reference_new
    agrees, tolerance = _verdict(candidate, reference, allowed)
    return Row(name, "update", parameter, old.shape, witness, discrepancy(candidate, reference),
               tolerance, agrees)


def compare_rule(rule: UpdateRule, problem: Problem, truth: Truth) -> RuleReport:
    """Rows for the rule's gradient (every witness) and its update (framework optimizers)."""
    reason = rule.unsupported_reason(problem.spec)
    if reason:
        return RuleReport(rule, unsupported=reason)
    args = (problem.spec, problem.params, problem.X, problem.Y, problem.lr)
    directions, new_params = rule.directions(*args), rule.step(*args)
    report = RuleReport(rule)
    for parameter in problem.params:
        for witness in truth.gradients:
            report.rows.append(
                _gradient_row(rule.name, problem, truth, witness, parameter, directions[parameter]))
        for witness in truth.steps:
            report.rows.append(
                _update_row(rule.name, problem, truth, witness, parameter, new_params[parameter]))
    return report


def compare_witnesses(problem: Problem, truth: Truth) -> list[Row]:
    """The witnesses checked against torch: they must agree among themselves, in float64."""
    rows = []
    f64 = problem.in_float64()
    for witness in truth.gradients:
        if witness == "torch":
            continue
        for parameter, candidate in truth.gradients[witness].items():
            if witness == "numeric":  # judged by the finite differences' own error estimate
                row = _gradient_row("torch vs numeric", f64, truth, "numeric", parameter,
                                    truth.gradients["torch"][parameter])
            else:
                row = _gradient_row(f"{witness} vs torch", f64, truth, "torch", parameter, candidate)
            rows.append(row)
    for parameter, new_value in truth.steps["jax"].items():
        rows.append(_update_row("jax vs torch", f64, truth, "torch", parameter, new_value))
    return rows


def compare_all(problem: Problem, rule_names: list[str] | None = None
                ) -> tuple[list[RuleReport], list[Row]]:
    """Ask the witnesses once, then compare each chosen rule (default: all registered)."""
    truth = ask_witnesses(problem)
    rules = [RULES[name] for name in (rule_names or RULES)]
    return [compare_rule(rule, problem, truth) for rule in rules], compare_witnesses(problem, truth)
