r"""Every tolerance bpcheck uses, and why — the one place they are defined.

A rule agrees with a float64 witness when, for every entry i of every parameter,

.. math::
    |a_i − b_i| ≤ τ · S_i + \mathrm{floor},\qquad
    τ = 8\,[u_{rule}\, m\,(1 + 2 z_{max}) + u_{64}\,(m + κ_{out})].

* **Magnitude** (S). Rounding errors scale with the *terms* a result is summed from, not with
  the result, which can cancel to zero (a softmax backward with equal upstream values, a
  residual p − y near a perfect fit, a bias gradient summed over samples). S is the running
  error bound's magnitude: the backward pass run on absolute values, starting from a bound on
  every registered loss's terms, |∂ℓ/∂a_L| ≤ 2(|a_L| + |y| + Σ_c|y_c| + 1) (probabilities and
  softmax are ≤ 1; BCE on probabilities also divides by p(1 − p)), × the 1/N of ``mean``;
  then |δ_k| ≤ 2·max(1, |slope|)·|∂L/∂a_k| for every activation (all
  registered derivatives are bounded by 1 or their slope; softmax's vjp by 2|g|), then
  |W_{k+1}|ᵀ|δ_{k+1}| down and |δ_k||ã_{k-1}|ᵀ into each weight (+ λ|W_k| with a penalty).
* **Summation** (m). Each entry is a sum of products along the backward pass; the standard
  bound for such sums is γ_m ≈ m·u times S, with m the rounding steps along the longest chain,
  m = (L + 1)(max_k n_k + 1 + N): L layers, widths n_k, batch N.
* **Pre-activation error** (z_max = max |z|). z carries an absolute error ≈ u·m·|z|, and
  σ′(z) moves by |σ″/σ′| ≤ 2 times that, relatively (sigmoid ≤ 1, tanh ≤ 2, relu 0).
* **The truth's own conditioning** (κ_out). PyTorch and JAX differentiate sigmoid and tanh
  from the *output*: σ(1 − σ) and 1 − t². Near saturation 1 − σ cancels, so their float64
  answer carries a relative error u·κ_out, κ_out = max over units of the condition number of
  the output form: |1 − 2σ|/(1 − σ) ≤ 1 + e^{|z|} (sigmoid), 2t²/(1 − t²) ≤ 2 cosh² z (tanh),
  1/(1 − max_c s_c) (softmax, whose backward s ⊙ (g − sᵀg) cancels as s nears one-hot; also
  softmax cross-entropy's s − y), 1 + e^{|z|} for binary cross-entropy on logits (σ(z) − y),
  1/min(p, 1 − p) for binary cross-entropy on probabilities (it divides by p(1 − p)).
  Where that makes τ vacuous, the float64 truth itself cannot settle the question: tests keep
  away from it (``informative``).
* **Underflow** (floor). No dtype resolves values below its smallest normal number (tiny:
  ≈1.2e−38 in float32, ≈2.2e−308 in float64), and XLA flushes subnormal results to zero, so
  each of the m steps may add that much: floor = 8·m·tiny(dtype).

Float32 rules are compared with the float64 truth computed from the *same* float32 inputs, so
input quantisation does not count against them. An SGD step adds one rounding of θ − ηg
(≤ u·|θ′| + tiny) to η times the gradient allowance. Finite differences carry their own
estimated error per entry (``reference.numeric``): |a − D_h| ≤ 8·estimate + the allowance.

**Optimizer trajectories.** After t steps of an optimizer, θ_t has gone through t roundings
of θ ← θ − Δ and each Δ carries a few relative roundings; errors also propagate through the
state (momenta, second moments), and some rules amplify them — centered RMSProp divides by
√(v − m²), which can be as small as α^{t/2}√v; Nesterov's g + μb can cancel. Rather than bound
each rule by hand, the witness's own sensitivity is measured: the witness reruns the trajectory
with θ_0 and every gradient entry multiplied by 1 ± ρ (random signs, ρ = PERTURBATION) and
D_t = max over reruns of |θ_t^ρ − θ_t| estimates how far errors of relative size ρ carry. Then

.. math::
    |θ_t^{rule} − θ_t^{truth}| ≤ 8\,[u_{rule}(t + 1)(|θ_t| + Σ_{s≤t}|Δ_s|)
                                 + (u_{rule} + u_{64})·D_t/ρ] + floor.

When the gradients are themselves computed (end-to-end training), further reruns move every
gradient entry by ± its whole gradient allowance e (above), and their spread is added as it is:
an adaptive rule divides by √v + ε, so where e is not small against ε the step is decided by
rounding, the allowance says so, and such draws are not informative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manual.spec import Spec, parse_activation

#: Factor over the first-order estimates (bounds are seldom tight; estimates can be low).
SAFETY = 8.0
#: A relative tolerance above this no longer tells a wrong rule from rounding.
INFORMATIVE = 1e-3
#: |σ′| ≤ bound·max(1, |parameter|) where tests draw z; 2 covers every registered activation
#: (softmax's vjp included); user activations may declare their own.
DERIVATIVE_BOUND: dict[str, float] = {}



def _saturation(z: np.ndarray) -> np.ndarray:
    """1 + e^{|z|} = 1/(1 − σ(|z|)), capped before overflow."""
    return 1.0 + np.exp(np.minimum(np.abs(z), 700.0))


def _dominance(z: np.ndarray) -> np.ndarray:
    """1/(1 − max_c softmax(z)_c) per sample, z of shape (N, C); 1 when C = 1 (s ≡ 1, exact)."""
    if z.shape[-1] == 1:
        return np.ones(z.shape[:-1])
    shifted = np.exp(z - z.max(axis=-1, keepdims=True))
    rest = shifted.sum(axis=-1) - 1.0  # Σ over the non-maximal classes (ties count too)
    return np.minimum(1.0 + 1.0 / np.maximum(rest, 1e-300), 1e300)


#: κ_out(z) per activation: how much a derivative taken from the output amplifies rounding.
OUTPUT_FORM_CONDITION = {
    "sigmoid": _saturation,
    "tanh": lambda z: 2.0 * np.cosh(np.minimum(np.abs(z), 350.0)) ** 2,
    "softmax": _dominance,
}
def _clamping(p: np.ndarray) -> np.ndarray:
    """1/min(p, 1 − p): BCE on probabilities divides by p(1 − p) and clamps its logs at 0 and 1."""
    return 1.0 / np.maximum(np.minimum(p, 1.0 - p), 1e-300)


#: The same for losses, as a function of (output pre-activations z_L, output a_L).
LOSS_CONDITION = {
    "bce": lambda z, p: _clamping(p),
    "bce-logits": lambda z, p: _saturation(z),
    "softmax-ce": lambda z, p: _dominance(z),
    "softmax-ce-labels": lambda z, p: _dominance(z),
}


@dataclass(frozen=True)
class Conditioning:
    """What about one problem (beyond its size) limits the attainable accuracy."""

    z_max: float = 0.0  # largest |pre-activation|
    output_form: float = 1.0  # κ_out, see the module docstring


def conditioning(spec: Spec, preactivations: list[np.ndarray], output: np.ndarray) -> Conditioning:
    """z_max and κ_out from the float64 pre-activations (N, units) per layer and output a_L."""
    z_max = max(float(np.max(np.abs(z), initial=0.0)) for z in preactivations)
    kappa = 1.0
    for name, z in zip(spec.activations, preactivations, strict=True):
        condition = OUTPUT_FORM_CONDITION.get(parse_activation(name)[0])
        if condition and z.size:
            kappa = max(kappa, float(np.max(condition(z))))
    if spec.loss in LOSS_CONDITION:
        kappa = max(kappa, float(np.max(LOSS_CONDITION[spec.loss](preactivations[-1], output))))
    return Conditioning(z_max, kappa)


def magnitudes(spec: Spec, params: dict[str, np.ndarray], layer_inputs: list[np.ndarray],
               output: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
    """S per parameter entry: the backward pass on absolute values (see the module docstring).

    ``layer_inputs`` are ã_0 … ã_{L-1} as (N, width) rows (bias-node ones included), ``output``
    is a_L and ``targets`` y as (N, C) rows (class labels as one-hot rows); all float64.
    """
    n = output.shape[0]
    terms = np.abs(output) + np.abs(targets) + np.abs(targets).sum(axis=1, keepdims=True) + 1.0
    if spec.loss == "bce":
        terms = terms / np.maximum(output * (1.0 - output), 1e-12)
    upstream = 2.0 * terms / (n if spec.reduction == "mean" else 1)
    scale: dict[str, np.ndarray] = {}
    for k in range(spec.depth, 0, -1):
        base, parameter = parse_activation(spec.activations[k - 1])
        delta = DERIVATIVE_BOUND.get(base, 2.0) * max(1.0, abs(parameter or 0.0)) * upstream
        weights = np.abs(params[f"W{k}"][:, : spec.sizes[k - 1]])
        scale[f"W{k}"] = delta.T @ np.abs(layer_inputs[k - 1])
        scale[f"W{k}"][:, : spec.sizes[k - 1]] += spec.l2 * weights
        if spec.bias == "vector":
            scale[f"b{k}"] = delta.sum(axis=0)
        upstream = delta @ weights
    return {name: scale[name] for name in params}


def unit_roundoff(dtype: str | np.dtype) -> float:
    """u = ε/2: 2^-53 for float64, 2^-24 for float32."""
    return float(np.finfo(np.dtype(dtype)).eps) / 2


def rounding_steps(spec: Spec, n_samples: int) -> int:
    """m = (L + 1)(max width + 1 + N)."""
    return (spec.depth + 1) * (max(spec.sizes) + 1 + n_samples)


def gradient_tolerance(spec: Spec, n_samples: int, dtype: str | np.dtype,
                       cond: Conditioning = Conditioning()) -> float:
    """τ: the allowed ‖a − b‖_∞ / ‖b‖_∞ of a gradient computed in ``dtype``."""
    m = rounding_steps(spec, n_samples)
    rule = unit_roundoff(dtype) * m * (1.0 + 2.0 * cond.z_max)
    truth = unit_roundoff(np.float64) * (m + cond.output_form)
    return SAFETY * (rule + truth)


def underflow_floor(spec: Spec, n_samples: int, dtype: str | np.dtype) -> float:
    """SAFETY · m · smallest normal number of dtype: absolute slack for gradual underflow."""
    return SAFETY * rounding_steps(spec, n_samples) * float(np.finfo(np.dtype(dtype)).smallest_normal)


def gradient_allowance(spec: Spec, n_samples: int, dtype: str | np.dtype, magnitude: np.ndarray,
                       cond: Conditioning = Conditioning()) -> np.ndarray:
    """Allowed |a_i − b_i| per entry of a gradient: τ·S_i + underflow floor."""
    return (gradient_tolerance(spec, n_samples, dtype, cond) * magnitude
            + underflow_floor(spec, n_samples, dtype))


def step_allowance(spec: Spec, n_samples: int, dtype: str | np.dtype, lr: float,
                   new_params: np.ndarray, magnitude: np.ndarray,
                   cond: Conditioning = Conditioning()) -> np.ndarray:
    """Allowed |θ′_rule − θ′_truth| per entry: 8·u·|θ′| + floor + η·(gradient allowance)."""
    return (SAFETY * unit_roundoff(dtype) * np.abs(new_params) + underflow_floor(spec, n_samples, dtype)
            + lr * gradient_allowance(spec, n_samples, dtype, magnitude, cond))


def finite_difference_allowance(spec: Spec, n_samples: int, dtype: str | np.dtype, estimate: np.ndarray,
                                magnitude: np.ndarray, cond: Conditioning = Conditioning()) -> np.ndarray:
    """Allowed |a_i − D_h,i| per entry: 8·estimate_i + the gradient allowance."""
    return SAFETY * estimate + gradient_allowance(spec, n_samples, dtype, magnitude, cond)


def informative(spec: Spec, n_samples: int, dtype: str | np.dtype, cond: Conditioning) -> bool:
    """Whether a comparison can still tell a wrong rule from rounding (τ ≤ INFORMATIVE)."""
    return gradient_tolerance(spec, n_samples, dtype, cond) <= INFORMATIVE


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

    def spread(runs, t, key):
        return np.max([np.abs(run[t - 1][key] - baseline[t - 1][key]) for run in runs], axis=0)

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
