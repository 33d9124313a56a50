r"""Every tolerance bpcheck uses, and why — the one place they are defined.

Errors are measured norm-wise per parameter: ‖a − b‖_∞ / ‖b‖_∞, with b the float64 truth.
Each gradient entry is a sum of products along the backward pass; a standard forward-error
bound for such sums is γ_m = m·u/(1 − m·u) ≈ m·u times the magnitude of the summed terms,
where u is the unit roundoff of the dtype the rule computed in and m the number of rounding
steps along the longest chain:

.. math::
    m = (L + 1)\,(\max_k n_k + 1 + N),

L layers, widths n_k, batch N (each layer adds a dot product of length ≤ n_k + 1 forward and
backward, and the weight gradient sums N products). The tolerance is τ = SAFETY · u · m.
Float32 rules are compared with the float64 truth computed from the *same* float32 inputs,
so input quantisation does not count against them.

SGD steps add one rounding of θ − ηg (≤ u·|θ_new|) to η times the gradient error.

Finite differences carry their own estimated error per entry (``reference.numeric``):
truncation |D_{2h} − D_h|/3 plus rounding; agreement means |a − D_h| ≤ SAFETY·estimate +
τ_64·‖D_h‖_∞.
"""

from __future__ import annotations

import numpy as np

from manual.spec import Spec

#: Factor over the first-order estimates (bounds are seldom tight; estimates can be low).
SAFETY = 8.0


def unit_roundoff(dtype: str | np.dtype) -> float:
    """u = ε/2: 2^-53 for float64, 2^-24 for float32."""
    return float(np.finfo(np.dtype(dtype)).eps) / 2


def rounding_steps(spec: Spec, n_samples: int) -> int:
    """m = (L + 1)(max width + 1 + N)."""
    return (spec.depth + 1) * (max(spec.sizes) + 1 + n_samples)


def gradient_tolerance(spec: Spec, n_samples: int, dtype: str | np.dtype) -> float:
    """τ = SAFETY · u(dtype) · m: allowed ‖a − b‖_∞ / ‖b‖_∞ of a gradient computed in dtype."""
    return SAFETY * unit_roundoff(dtype) * rounding_steps(spec, n_samples)


def step_tolerance(
    spec: Spec, n_samples: int, dtype: str | np.dtype, lr: float,
    new_params: np.ndarray, gradient: np.ndarray,
) -> float:
    """Allowed ‖θ′_rule − θ′_truth‖_∞: SAFETY·u·‖θ′‖_∞ + η·τ·‖g‖_∞."""
    scale = float(np.max(np.abs(new_params), initial=0.0))
    grad_scale = float(np.max(np.abs(gradient), initial=0.0))
    return (SAFETY * unit_roundoff(dtype) * scale
            + lr * gradient_tolerance(spec, n_samples, dtype) * grad_scale)


def finite_difference_tolerance(
    spec: Spec, n_samples: int, dtype: str | np.dtype, fd: np.ndarray, estimate: np.ndarray
) -> np.ndarray:
    """Allowed |a_i − D_h,i| per entry: SAFETY·estimate_i + τ(dtype)·‖D_h‖_∞."""
    scale = float(np.max(np.abs(fd), initial=0.0))
    tau = max(gradient_tolerance(spec, n_samples, dtype), gradient_tolerance(spec, n_samples, "float64"))
    return SAFETY * estimate + tau * scale
