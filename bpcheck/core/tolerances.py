"""Every tolerance bpcheck uses — the one place they are defined.

A correct rule differs from the exact gradient by its rounding. Per entry i of each parameter it
must satisfy |a_i − g_i| ≤ e_i = SAFETY·(s_i + SPREAD·max_j s_j) + floor, where s_i is measured
on *this* problem: the spread of torch reruns with every stored value moved by ±ρ (ρ = 2u_d),
scaled by ROUNDINGS_PER_VALUE·(u_d + u_64)/ρ, a same-dtype torch run, jax against torch, and the
result's own rounding. A row agrees only when max_i e_i ≤ INFORMATIVE·max_i |g_i|, else it is
inconclusive. Finite differences along a direction w allow Σ_i |w_i|·e_i + SAFETY·estimate, and
agree only below INFORMATIVE·√(Σ_i w_i²g_i²) (``projected_allowance``, ``projected_scale``).
Optimizer trajectories add the rounding of each step and the witness's measured sensitivity D_t/ρ.
The derivation and the reasons for each constant: docs/explanation/tolerances.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manual.spec import ACTIVATIONS, LOSSES, Spec, parse_activation

#: Factor over the first-order estimates (bounds are seldom tight; estimates can be low).
SAFETY = 8.0
#: A relative allowance above this no longer tells a wrong rule from rounding.
INFORMATIVE = 1e-3
#: Each entry's allowance also takes this share of its parameter's largest sensitivity.
SPREAD = 1.0
#: Roundings behind each stored value in the reruns' model: an activation and its derivative
#: take 3–6 operations each (exp, add, divide, multiply), not one; 1 gave float64 false alarms
#: on 6-layer sigmoid chains (errors of 9e−15 relative against allowances of 1e−14). The same
#: count holds in float32: with 2, trusting a same-dtype torch run to show the rest, a dev run
#: found a correct float32 rule 1.4× over its allowance on sums that cancel to 1e−6 of their
#: terms, where torch's own float32 answer happened to be 40× closer to the truth
#: (tests/test_verdicts.py, float32_cancellation_five_layers).
ROUNDINGS_PER_VALUE = 4
#: κ_out above which a unit is called saturated when a verdict is inconclusive (|z| ≳ 9 for
#: sigmoid, ≳ 5 for tanh, p within 1e−4 of 0 or 1).
SATURATED = 1e4
#: Diagnosis of networks of layers checks each layer alone, in float64, on O(1) inputs and a
#: random dout: a correct layer is within ~1e−15·fan-in of torch, a wrong one off by O(1), so a
#: relative 1e−8 of the witness's ∞-norm separates them with seven digits to spare either way.
#: The same threshold says a user's torch and jax forwards compute different functions
#: (``bpcheck.user.layer_check``): the sensitivity reruns perturb a user layer's input and output but
#: not its insides, so a gradient that cancels inside it can differ between the two by more
#: than the reruns show (1e−10 relative, seen), while a different function differs by O(1).
LAYER_DIAGNOSIS = 1e-8
#: A user's layer is opaque to the reruns and to κ_out; torch's float32 answer, its error times
#: u_64/u_32, bounds the float64 rounding of its insides (``bpcheck.layers.allowances``) — while
#: float32 still resolves them. Past κ ≈ 1/u_32 it does not (a tanh that rounds to 1 in float32
#: but not in float64: the scaled bound fell 150× short on a new user's gate at tanh(11)), and
#: a float32 error above 1e−3 of the entry (κ ≳ 10⁴ in float32) already says the insides are
#: that ill-conditioned: such entries are not judged.
FLOAT32_LOST = 1e-3
#: σ′ taken from an output σ rounded by u is off by |σ′|·min(u·κ_out, OUTPUT_FORM_LIMIT): where
#: σ is within u/2 of its limit (±1, 0 or 1) it rounds to it and σ̂′ = 0, off by σ′ itself;
#: elsewhere u·κ_out ≤ 4 (tanh: 1 − t ≥ u/4 there) (``bpcheck.mlp.allowances.saturated_paths_bound``).
OUTPUT_FORM_LIMIT = 4.0
#: Float64 reruns with every stored value perturbed by 1 ± ρ that measure the sensitivity.
SENSITIVITY_RUNS = 3
@dataclass(frozen=True)
class Conditioning:
    """What about one problem (beyond its size) limits the attainable accuracy."""

    z_max: float = 0.0  # largest |pre-activation|
    output_form: float = 1.0  # κ_out, see the module docstring


def worst_conditioning(spec: Spec, preactivations: list[np.ndarray], output: np.ndarray) -> Conditioning:
    """An MLP's z_max and κ_out, the largest over the network, from the float64 pre-activations
    (N, units) per layer and output a_L (a stack's, per gradient:
    ``bpcheck.layers.allowances.conditioning_per_gradient``)."""
    z_max = max(float(np.max(np.abs(z), initial=0.0)) for z in preactivations)
    kappa = 1.0
    for name, z in zip(spec.activations, preactivations, strict=True):
        condition = ACTIVATIONS[parse_activation(name)[0]].output_form_condition
        if condition and z.size:
            kappa = max(kappa, float(np.max(condition(z))))
    if (loss_condition := LOSSES[spec.loss].condition) is not None:
        kappa = max(kappa, float(np.max(loss_condition(preactivations[-1], output))))
    return Conditioning(z_max, kappa)


def saturation(spec: Spec, preactivations: list[np.ndarray], output: np.ndarray) -> str:
    """Where the problem is worst conditioned: the unit (or loss term) with the largest κ_out
    above SATURATED, or the first non-finite pre-activation; said when a verdict is
    inconclusive ("" where nothing is saturated)."""
    worst, where = SATURATED, ""
    for k, (name, z) in enumerate(zip(spec.activations, preactivations, strict=True), start=1):
        if not np.all(np.isfinite(z)):
            return f"layer {k} ({name}) overflows: its pre-activations are not finite in float64"
        condition = ACTIVATIONS[parse_activation(name)[0]].output_form_condition
        if condition and z.size:
            kappa = condition(z)
            sample = np.unravel_index(int(np.argmax(kappa)), kappa.shape)[0]
            unit = int(np.argmax(np.abs(z[sample])))
            if float(np.max(kappa)) > worst:
                worst = float(np.max(kappa))
                where = (f"layer {k} ({name}) is saturated at unit {unit}, sample {sample} "
                         f"(indices from 0; z = {z[sample, unit]:.3g})")
    if (loss_condition := LOSSES[spec.loss].condition) is not None:
        kappa = loss_condition(preactivations[-1], output)
        kappa = np.broadcast_to(kappa if kappa.ndim == 2 else kappa[:, None], output.shape)
        if float(np.max(kappa)) > worst:
            sample, unit = np.unravel_index(int(np.argmax(kappa)), kappa.shape)
            worst, where = float(np.max(kappa)), (f"the {spec.loss} loss is saturated at output "
                                                   f"{unit}, sample {sample} (indices from 0; "
                                                   f"a = {output[sample, unit]:.6g})")
    return where


def unit_roundoff(dtype: str | np.dtype) -> float:
    """u = ε/2: 2^-53 for float64, 2^-24 for float32."""
    return float(np.finfo(np.dtype(dtype)).eps) / 2


def rounding_steps(depth: int, widest: int, n_samples: int) -> int:
    """m = (depth + 1)(widest + 1 + N): the roundings one gradient entry may gather, for either
    family — an MLP's L layers and widest layer (``mlp_rounding_steps``), or a stack's layers
    and largest per-sample size (``bpcheck.layers.allowances.stack_rounding_steps``)."""
    return (depth + 1) * (widest + 1 + n_samples)


def mlp_rounding_steps(spec: Spec, n_samples: int) -> int:
    """m = (L + 1)(max width + 1 + N) of an MLP."""
    return rounding_steps(spec.depth, max(spec.sizes), n_samples)


def gradient_tolerance(spec: Spec, n_samples: int, dtype: str | np.dtype,
                       cond: Conditioning = Conditioning()) -> float:
    """τ: the allowed ‖a − b‖_∞ / ‖b‖_∞ of a gradient computed in ``dtype``."""
    m = mlp_rounding_steps(spec, n_samples)
    rule = unit_roundoff(dtype) * m * (1.0 + 2.0 * cond.z_max)
    truth = unit_roundoff(np.float64) * (m + cond.output_form)
    return SAFETY * (rule + truth)


def underflow_floor(steps: int, dtype: str | np.dtype) -> float:
    """SAFETY · m · smallest normal number of dtype, m = ``steps`` (``rounding_steps``):
    absolute slack for gradual underflow, for either family."""
    return SAFETY * steps * float(np.finfo(np.dtype(dtype)).smallest_normal)


def gradient_allowance(spec: Spec, n_samples: int, dtype: str | np.dtype, magnitude: np.ndarray,
                       cond: Conditioning = Conditioning()) -> np.ndarray:
    """The worst case per entry of a gradient: τ·S_i + underflow floor (end-to-end training's
    gradient error scale; +∞ where it overflows, i.e. no bound)."""
    with np.errstate(over="ignore"):
        return (gradient_tolerance(spec, n_samples, dtype, cond) * magnitude
                + underflow_floor(mlp_rounding_steps(spec, n_samples), dtype))


def rerun_perturbation(dtype: str | np.dtype) -> float:
    """ρ = 2u_d: the size of one rounding in the rule's dtype (2^-23 in float32, 2^-52 in
    float64), so that the reruns see what a rounding really does, clamps and cancellations
    included, not a linearisation of it."""
    return 2.0 * unit_roundoff(dtype)


def sensitivity(dtype: str | np.dtype, spread: np.ndarray, rho: float, truth: np.ndarray,
                output_form: float, *samples: np.ndarray,
                saturated: np.ndarray | float = 0.0) -> np.ndarray:
    """s_i = max(R·(u_d + u_64)·Δ_i/ρ, R·((u_d + u_64·κ_out)·|g_i| + P_i), |g'_i − g_i| of each
    same-dtype sample), Δ from reruns at ρ, P (``saturated``) at u_64. The middle term is the
    result's own rounding, which reruns whose perturbations rounding swallowed would not show,
    and the truth's error
    where frameworks differentiate from the output (σ(1 − σ) of a stored σ: reruns perturb σ
    after the framework saved it, so they cannot show it): κ_out·|g_i| for the units that are
    not saturated, and P_i, the paths from the saturated ones to entry i
    (``bpcheck.mlp.allowances.saturated_paths_bound``: each such unit bounds its own error)."""
    u, u64, roundings = unit_roundoff(dtype), unit_roundoff(np.float64), ROUNDINGS_PER_VALUE
    scaled = roundings * (u + u64) * spread / rho
    own = roundings * ((u + u64 * output_form) * np.abs(truth) + np.asarray(saturated))
    return np.maximum.reduce([scaled, own, *samples])


def measured_allowance(spec: Spec, n_samples: int, dtype: str | np.dtype,
                       sens: np.ndarray) -> np.ndarray:
    """e_i = SAFETY·(s_i + SPREAD·max_j s_j) + floor: what a correct gradient computed in
    ``dtype`` may be off by, per entry (see the module docstring)."""
    return spread_allowance(sens, underflow_floor(mlp_rounding_steps(spec, n_samples), dtype))


def spread_allowance(sens: np.ndarray, floor: float) -> np.ndarray:
    """e_i = SAFETY·(s_i + SPREAD·max_j s_j) + floor."""
    return SAFETY * (sens + SPREAD * np.max(sens, initial=0.0)) + floor


def step_allowance(dtype: str | np.dtype, floor: float, lr: float, new_params: np.ndarray,
                   gradient: np.ndarray) -> np.ndarray:
    """Allowed |θ′_rule − θ′_truth| per entry: 8·u·|θ′| + floor + η·(gradient allowance)."""
    return SAFETY * unit_roundoff(dtype) * np.abs(new_params) + floor + lr * gradient


def finite_difference_allowance(estimate: np.ndarray, gradient: np.ndarray, value: np.ndarray,
                                scale: float) -> np.ndarray:
    """Allowed |a_i − D_h,i| per entry: 8·estimate_i + the gradient allowance; ∞ (not judged)
    where the estimate breaks its own premise, 8·estimate_i > |D_h,i| and estimate_i >
    INFORMATIVE·``scale`` (the parameter's largest exact |g|).

    Richardson's estimate assumes D_h − g ≈ c·h² with c·h² small against g. Where the estimate
    is a sizeable share of the entry's own value, and not negligible against the gradient's
    scale, the step is outside that regime (a kink or a log's curvature within h of θ: a
    clipped probability 1.8e−7 from its clip 1e−7, moved by h = 6e−6, gives an estimate of
    1.1·|D_h| and an error of 12·|D_h|): the estimate is no bound, and the other witnesses
    decide those entries."""
    allowed = SAFETY * estimate + gradient
    broken = (SAFETY * estimate > np.abs(value)) & (estimate > INFORMATIVE * scale)
    return np.where(broken, np.inf, allowed)


def projected_allowance(directions: np.ndarray, allowance: np.ndarray, estimate: np.ndarray,
                        value: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Allowed |a·w − D_h| along each realised direction w (K, *shape) of finite differences by
    projection (``reference.projection``): Σ_i |w_i|·e_i + SAFETY·estimate.

    If each |a_i − g_i| ≤ e_i, then |a·w − g·w| ≤ Σ_i |w_i|·e_i (the triangle inequality, so no
    new constant); D_h is off g·w by its estimate, given SAFETY as entry by entry
    (``finite_difference_allowance``), and ∞ (not judged) where the estimate breaks its own
    premise the same way: SAFETY·estimate > |D_h| and estimate > INFORMATIVE·``scale``."""
    flat = np.abs(directions.reshape(len(directions), -1))
    with np.errstate(over="ignore", invalid="ignore"):  # ∞ or NaN: not judged
        allowed = flat @ np.asarray(allowance, np.float64).ravel() + SAFETY * estimate
    broken = (SAFETY * estimate > np.abs(value)) & (estimate > INFORMATIVE * scale)
    return np.where(broken | ~np.isfinite(allowed), np.inf, allowed)


def projected_scale(directions: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """√(Σ_i w_i²·g_i²) per direction: the typical |e·w| of an error e as large as the gradient
    itself in every entry, with random signs. A projected row is conclusive only where its
    allowance is at most INFORMATIVE of this (``conclusive``): an error of a thousandth of
    the gradient, spread over the array, would show along w. (An error in one entry j moves
    a·w by w_j·e_j, |w_j| ~ 1/√n: the per-entry rows against torch and jax see that.)"""
    terms = np.abs(directions.reshape(len(directions), -1) * np.asarray(exact, np.float64).ravel())
    largest = np.max(terms, axis=1, initial=0.0)
    with np.errstate(invalid="ignore"):  # scaled by the largest term: no overflow on the way
        ratio = np.where(largest[:, None] > 0, terms / np.where(largest > 0, largest, 1.0)[:, None], 0.0)
    return largest * np.sqrt(np.sum(np.square(ratio), axis=1))


def conclusive(allowance: np.ndarray, reference: np.ndarray, floor: float,
               saturated: bool = False) -> bool:
    """Whether an allowance can tell a wrong rule from rounding: all finite, and
    max e_i ≤ INFORMATIVE·max |g_i| (a gradient below the underflow floor cannot be judged); an
    all-zero gradient is compared exactly (e_i = floor), but not in a ``saturated`` network,
    where σ′ underflowed to 0 and hides every error that scales the gradient, nor where nothing
    flows back at all (``bpcheck.mlp.allowances`` names either reason; ``saturated`` is whether
    there is one)."""
    allowance, reference = np.asarray(allowance), np.asarray(reference)
    if not (np.all(np.isfinite(allowance)) and np.all(np.isfinite(reference))):
        return False
    return informative(float(np.max(allowance, initial=0.0)), float(np.max(np.abs(reference), initial=0.0)),
                       floor, saturated)


def informative(widest: float, scale: float, floor: float, saturated: bool = False) -> bool:
    """``conclusive`` of finite arrays from their largest entries: the widest allowance against
    INFORMATIVE of the largest |g_i| (``scale``), or, where that is 0, against the floor."""
    if scale == 0:  # compared exactly, unless σ′ underflowed or nothing flows back
        return not saturated and widest <= floor
    return widest <= INFORMATIVE * scale


#: Relative size of the perturbations that measure a trajectory's sensitivity (well above
#: float64 rounding, well inside the linear regime).
PERTURBATION = 2.0**-24


Arrays = dict[str, np.ndarray]


def trajectory_allowance(dtype: str | np.dtype, initial: Arrays, path: list[Arrays],
                         perturbed: list[list[Arrays]], baseline: list[Arrays] | None = None,
                         gradient_perturbed: list[list[Arrays]] = ()) -> list[Arrays]:
    """Allowed |θ_t^rule − θ_t^truth| per entry after each step t (see the module docstring).

    ``perturbed`` are the reruns with relative perturbations ρ, ``gradient_perturbed`` those
    whose computed gradients were moved by their whole allowance (counted as they are), both
    measured from ``baseline`` (the truth ``path`` itself when the reruns come from the same
    witness)."""
    baseline = path if baseline is None else baseline
    u, u64 = unit_roundoff(dtype), unit_roundoff(np.float64)
    tiny = float(np.finfo(np.dtype(dtype)).smallest_normal)
    allowances, previous = [], initial
    travelled = {key: np.zeros_like(value, dtype=np.float64) for key, value in initial.items()}

    def spread(runs, t, key):  # 0 without reruns: rounding alone
        return np.max([np.abs(run[t - 1][key] - baseline[t - 1][key]) for run in runs], axis=0,
                      initial=0.0)

    for t, now in enumerate(path, start=1):
        step = {}
        for key, value in now.items():
            travelled[key] = travelled[key] + np.abs(value - previous[key])
            step[key] = SAFETY * (u * (t + 1) * (np.abs(value) + travelled[key])
                                  + (u + u64) * spread(perturbed, t, key) / PERTURBATION + (t + 1) * tiny)
            if gradient_perturbed:
                step[key] = step[key] + spread(gradient_perturbed, t, key)
        allowances.append(step)
        previous = now
    return allowances
