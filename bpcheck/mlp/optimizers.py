"""Compare the manual optimizers with torch.optim and optax, step by step over a trajectory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bpcheck.core.metrics import relative
from bpcheck.core.tolerances import INFORMATIVE, PERTURBATION, gradient_tolerance, trajectory_allowance
from bpcheck.mlp.allowances import worst_case_allowance
from bpcheck.mlp.problem import Problem
from manual import network, optim
from manual.spec import Params
from reference import WITNESSES
from reference.optim_ref import TRAJECTORIES, GradientAt

ErrorScaleAt = Callable[[Params], Params]  # parameters → per-entry gradient error scale

#: The frameworks whose optimizers witness the manual ones.
FRAMEWORKS = tuple(TRAJECTORIES)


def manual_trajectory(name: str, params: Params, gradient_at: GradientAt, steps: int,
                      hp: dict) -> list[Params]:
    """Parameters after each step of the manual rule (in the parameters' own dtype)."""
    bound = optim.optimizer(name).bind(**hp)
    state = bound.init(params)
    path = []
    for t in range(1, steps + 1):
        params, state = bound.step(params, gradient_at(params, t), state)
        path.append(params)
    return path


def in_convention(name: str, hp: dict, framework: str) -> dict:
    """hp with every formula switch (ε placement) set to what the framework can express."""
    rule = optim.optimizer(name)
    return rule.bind(**{**hp, **rule.in_convention(framework)}).hp


def random_signs(rng: np.random.Generator, like: np.ndarray) -> np.ndarray:
    """±1 per entry of ``like``, each with probability ½."""
    return rng.choice([-1.0, 1.0], np.shape(like))


def perturbed(gradient_at: GradientAt, rng: np.random.Generator) -> GradientAt:
    """The same gradients with every entry g multiplied by 1 ± ρ (ρ = PERTURBATION), signs drawn
    afresh at every step: rounding noise."""
    def at(params: Params, t: int) -> Params:
        return {key: np.asarray(g, np.float64) * (1 + PERTURBATION * random_signs(rng, g))
                for key, g in gradient_at(params, t).items()}
    return at


def moved_by_allowance(gradient_at: GradientAt, error_scale_at: ErrorScaleAt,
                       signs: dict[str, np.ndarray]) -> GradientAt:
    """The same gradients with every entry g moved by its gradient allowance e: g + s·e, one sign s
    per entry for the whole trajectory. A rule's rounding of the same computation repeats from
    step to step; signs drawn afresh at each step let two steps' moves cancel (seen: 2 steps of
    Adam left one entry's allowance 10⁵ times below its neighbours')."""
    def at(params: Params, t: int) -> Params:
        scale = error_scale_at(params)
        return {key: np.asarray(g, np.float64) + scale[key] * signs[key]
                for key, g in gradient_at(params, t).items()}
    return at


def shaken(params: Params, rng: np.random.Generator) -> Params:
    """θ_0 with every entry multiplied by 1 ± PERTURBATION."""
    return {key: np.asarray(v, np.float64) * (1 + PERTURBATION * random_signs(rng, v))
            for key, v in params.items()}


@dataclass(frozen=True)
class StepRow:
    """One parameter after one step: the manual rule against one framework."""

    framework: str
    step: int
    parameter: str
    max_abs_error: float
    rel_error: float
    allowed: float  # the largest per-entry allowance, for display
    agrees: bool
    informative: bool  # the allowance is small enough (≤ INFORMATIVE relative) to tell rules apart


def compare_trajectory(name: str, params: Params, gradient_at: GradientAt, steps: int, hp: dict,
                       framework: str, manual_gradient_at: GradientAt | None = None,
                       error_scale_at: ErrorScaleAt | None = None, reruns: int = 2,
                       seed: int = 0) -> list[StepRow]:
    """Manual rule (in params' dtype) vs the framework's float64 trajectory, with allowances.

    ``gradient_at`` feeds the framework (and, unless ``manual_gradient_at`` is given, the manual
    rule). The trajectory's sensitivity is measured on torch.optim (its steps cost microseconds;
    optax's, run op by op, milliseconds), with ε placed where torch puts it — a negligible
    change to how errors propagate — from an unperturbed torch baseline."""
    hp = optim.hyperparameters(name, **hp)  # complete: every hyperparameter, defaults filled in
    start = {key: np.asarray(v, np.float64) for key, v in params.items()}
    truth = TRAJECTORIES[framework](name, start, gradient_at, steps, hp)
    rng, torch_hp = np.random.default_rng(seed), {**in_convention(name, hp, "torch")}
    if torch_hp.get("eps_root"):
        torch_hp["eps_root"] = 0.0
    torch_run = TRAJECTORIES["torch"]
    baseline = truth if framework == "torch" else torch_run(name, start, gradient_at, steps, torch_hp)
    shaken_runs = [torch_run(name, shaken(start, rng), perturbed(gradient_at, rng), steps, torch_hp)
                   for _ in range(reruns)]
    signs = {key: random_signs(rng, value) for key, value in start.items()}  # and their opposites
    gradient_runs = [torch_run(name, start, moved_by_allowance(gradient_at, error_scale_at, {
        key: direction * s for key, s in signs.items()}), steps, torch_hp)
        for direction in ((1.0, -1.0) if error_scale_at else ())]
    allowances = trajectory_allowance(next(iter(params.values())).dtype, start, truth, shaken_runs,
                                      baseline, gradient_runs)
    mine = manual_trajectory(name, params, manual_gradient_at or gradient_at, steps, hp)
    rows = []
    for t, (ours, theirs, allowed) in enumerate(zip(mine, truth, allowances, strict=True), start=1):
        for key, reference in theirs.items():
            error = np.abs(np.asarray(ours[key], np.float64) - reference)
            largest = float(error.max(initial=0))
            size = max(float(np.abs(reference).max(initial=0)), float(np.abs(start[key]).max(initial=0)))
            allowance = float(allowed[key].max(initial=0))
            rows.append(StepRow(framework, t, key, largest, relative(largest, size), allowance,
                                bool(np.all(error <= allowed[key])), allowance <= INFORMATIVE * size))
    return rows


class Uninformative(ValueError):
    """The float64 truth cannot settle this comparison (the worst-case gradient bound is too wide)."""


#: The gradient witness that drives each framework's optimizer in end-to-end training.
GRADIENT_WITNESS = {"torch": "torch", "optax": "jax"}
#: The other float64 gradient witness, whose trajectory must agree for a comparison to count.
OTHER_GRADIENT_WITNESS = {"torch": "jax", "optax": "torch"}


def compare_training(problem: Problem, name: str, hp: dict, steps: int,
                     framework: str) -> list[StepRow]:
    """Train on one batch for ``steps`` steps: manual gradients + manual optimizer against the
    framework's autodiff + its optimizer; parameters compared after every step. Raises
    ``Uninformative`` where the gradients' own rounding allowance is too wide to judge, or where
    the framework's optimizer driven by the other witness's gradients leaves the allowance
    (the witnesses disagree among themselves: rounding decides the trajectory)."""
    spec, X, Y = problem.spec, problem.X, problem.Y
    witness = WITNESSES[GRADIENT_WITNESS[framework]]

    def framework_gradients(params: Params, t: int) -> Params:
        return witness.gradients(spec, params, X, Y)

    def manual_gradients(params: Params, t: int) -> Params:
        return network.gradients(spec, params, X, Y)

    def error_scale(params: Params) -> Params:
        now = Problem(spec, params, X, Y, problem.lr)
        cond, bound = worst_case_allowance(now)
        if gradient_tolerance(spec, now.n_samples, spec.dtype, cond) > INFORMATIVE:
            raise Uninformative("the gradient's worst-case rounding bound exceeds INFORMATIVE here")
        return bound

    # Where rounding decides the trajectory (0 an unstable equilibrium of the step, say), the
    # witnesses disagree among themselves: the same optimizer driven by the other witness's
    # float64 gradients must stay within the allowance, or nothing can be judged here.
    other = WITNESSES[OTHER_GRADIENT_WITNESS[framework]]

    def other_gradients(params: Params, t: int) -> Params:
        return other.gradients(spec, params, X, Y)

    start = problem.in_float64().params
    cross = compare_trajectory(name, start, framework_gradients, steps, hp, framework, other_gradients,
                               error_scale)
    if not all(row.agrees for row in cross):
        raise Uninformative(f"{framework} driven by {other.name}'s gradients leaves its own "
                            "allowance: rounding decides this trajectory")
    return compare_trajectory(name, problem.params, framework_gradients, steps, hp, framework,
                              manual_gradients, error_scale)


def fixed_gradients(sequence: list[Params]) -> Callable[[Params, int], Params]:
    """A gradient source that ignores the parameters: step t gets sequence[t − 1]."""
    return lambda params, t: sequence[t - 1]


def convention_table(steps: int = 10, seed: int = 0) -> list[dict]:
    """torch vs optax for each same-named optimizer at their defaults, and what explains it.

    Both frameworks run from the same θ_0 with the same gradient sequence and the same learning
    rate (optax has no default one; torch's is used), every other hyperparameter at each
    framework's default. "manual_switched_vs_optax" is the largest difference left between optax
    and the manual rule set to torch's defaults with only the named conventions switched to
    optax's; "explained" says it and the unswitched rule's gap to torch are within "rounding",
    float64's rounding of the trajectories.
    """
    rng = np.random.default_rng(seed)
    params = {"W": rng.standard_normal((4, 3)), "b": rng.standard_normal(4)}
    gradient_at = fixed_gradients([{k: rng.standard_normal(v.shape) for k, v in params.items()}
                                   for _ in range(steps)])
    rows = []
    for name, rule in optim.OPTIMIZERS.items():
        differences = rule.conventions
        torch_hp = optim.hyperparameters(name)
        optax_hp = optim.hyperparameters(name, **{k: pair[1] for k, pair in differences.items()})
        torch_path = TRAJECTORIES["torch"](name, params, gradient_at, steps, torch_hp)
        optax_path = TRAJECTORIES["optax"](name, params, gradient_at, steps, optax_hp)
        switched = manual_trajectory(name, params, gradient_at, steps, optax_hp)
        unswitched = manual_trajectory(name, params, gradient_at, steps, torch_hp)

        def gap(a: list[Params], b: list[Params]) -> float:
            return max(float(np.abs(x[k] - y[k]).max()) for x, y in zip(a, b, strict=True) for k in x)

        # float64 rounding of either trajectory, with no reruns (``bpcheck.core.tolerances``)
        rounding = max(float(allowed[k].max()) for path in (torch_path, optax_path)
                       for allowed in trajectory_allowance(np.float64, params, path, []) for k in allowed)
        rows.append({
            "optimizer": name,
            "differences": ", ".join(f"{k}: {t!r} → {o!r}" for k, (t, o) in differences.items()) or "none",
            "torch_vs_optax": gap(torch_path, optax_path),
            "manual_torch_vs_torch": gap(unswitched, torch_path),
            "manual_switched_vs_optax": gap(switched, optax_path),
            "rounding": rounding,
            "explained": max(gap(switched, optax_path), gap(unswitched, torch_path)) <= rounding,
        })
    return rows

