r"""Every tolerance bpcheck uses, and why — the one place they are defined.

Errors are measured norm-wise per parameter: ‖a − b‖_∞ / ‖b‖_∞, b the float64 truth. A rule
agrees when ‖a − b‖_∞ ≤ τ·‖b‖_∞ + floor, with

.. math::
    τ = \mathrm{SAFETY}\,\big[\,u_{rule}\, m\,(1 + z_{max}) + u_{64}\,(m + κ_{out})\,\big].

* **Summation** (m). Each gradient entry is a sum of products along the backward pass; the
  standard bound for such sums is γ_m ≈ m·u times the summed magnitudes, with m the rounding
  steps along the longest chain, m = (L + 1)(max_k n_k + 1 + N): L layers, widths n_k,
  batch N (a dot product of length ≤ n_k + 1 per layer forward and backward, and N products
  summed into each weight gradient).
* **Pre-activation error** (z_max = max |z|). z carries an absolute error ≈ u·m·|z|, and
  σ′(z) moves by |σ″/σ′| ≤ 2 times that, relatively (sigmoid ≤ 1, tanh ≤ 2, relu 0).
* **The truth's own conditioning** (κ_out). PyTorch and JAX differentiate sigmoid and tanh
  from the *output*: σ(1 − σ) and 1 − t². Near saturation 1 − σ cancels, so their float64
  answer carries a relative error u·κ_out, κ_out = max over units of the condition number of
  the output form: |1 − 2σ|/(1 − σ) ≤ 1 + e^{|z|} (sigmoid), 2t²/(1 − t²) ≤ 2 cosh² z (tanh).
  Where that makes τ vacuous, the float64 truth itself cannot settle the question: tests keep
  away from it (``informative``).
* **Underflow** (floor). No dtype resolves values below its smallest normal number (tiny:
  ≈1.2e−38 in float32, ≈2.2e−308 in float64), and XLA flushes subnormal results to zero, so
  each of the m steps may add that much: floor = SAFETY·m·tiny(dtype).

Float32 rules are compared with the float64 truth computed from the *same* float32 inputs, so
input quantisation does not count against them. An SGD step adds one rounding of θ − ηg
(≤ u·|θ′| + tiny) to η times the gradient allowance. Finite differences carry their own estimated error
per entry (``reference.numeric``): |a − D_h| ≤ SAFETY·estimate + the gradient allowance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manual.spec import Spec

#: Factor over the first-order estimates (bounds are seldom tight; estimates can be low).
SAFETY = 8.0
#: A relative tolerance above this no longer tells a wrong rule from rounding.
INFORMATIVE = 1e-3

#: κ_out(z): how much a derivative computed from the activation's output amplifies its rounding.
OUTPUT_FORM_CONDITION = {
    "sigmoid": lambda z: 1.0 + np.exp(np.minimum(np.abs(z), 700.0)),
    "tanh": lambda z: 2.0 * np.cosh(np.minimum(np.abs(z), 350.0)) ** 2,
}


@dataclass(frozen=True)
class Conditioning:
    """What about one problem (beyond its size) limits the attainable accuracy."""

    z_max: float = 0.0  # largest |pre-activation|
    output_form: float = 1.0  # κ_out, see the module docstring


def conditioning(spec: Spec, preactivations: list[np.ndarray]) -> Conditioning:
    """z_max and κ_out of a problem from its float64 pre-activations (one array per layer)."""
    z_max = max(float(np.max(np.abs(z), initial=0.0)) for z in preactivations)
    kappa = 1.0
    for name, z in zip(spec.activations, preactivations, strict=True):
        if name in OUTPUT_FORM_CONDITION and z.size:
            kappa = max(kappa, float(np.max(OUTPUT_FORM_CONDITION[name](z))))
    return Conditioning(z_max, kappa)


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


def gradient_allowance(spec: Spec, n_samples: int, dtype: str | np.dtype, truth: np.ndarray,
                       cond: Conditioning = Conditioning()) -> float:
    """Allowed ‖a − b‖_∞ for a gradient: τ·‖b‖_∞ + underflow floor."""
    scale = float(np.max(np.abs(truth), initial=0.0))
    return (gradient_tolerance(spec, n_samples, dtype, cond) * scale
            + underflow_floor(spec, n_samples, dtype))


def step_allowance(spec: Spec, n_samples: int, dtype: str | np.dtype, lr: float,
                   new_params: np.ndarray, gradient: np.ndarray,
                   cond: Conditioning = Conditioning()) -> float:
    """Allowed ‖θ′_rule − θ′_truth‖_∞: SAFETY·u·‖θ′‖_∞ + floor + η·(gradient allowance)."""
    scale = float(np.max(np.abs(new_params), initial=0.0))
    return (SAFETY * unit_roundoff(dtype) * scale + underflow_floor(spec, n_samples, dtype)
            + lr * gradient_allowance(spec, n_samples, dtype, gradient, cond))


def finite_difference_allowance(spec: Spec, n_samples: int, dtype: str | np.dtype, fd: np.ndarray,
                                estimate: np.ndarray, cond: Conditioning = Conditioning()) -> np.ndarray:
    """Allowed |a_i − D_h,i| per entry: SAFETY·estimate_i + the gradient allowance."""
    return SAFETY * estimate + gradient_allowance(spec, n_samples, dtype, fd, cond)


def informative(spec: Spec, n_samples: int, dtype: str | np.dtype, cond: Conditioning) -> bool:
    """Whether a comparison can still tell a wrong rule from rounding (τ ≤ INFORMATIVE)."""
    return gradient_tolerance(spec, n_samples, dtype, cond) <= INFORMATIVE
