"""The allowances of one network-of-layers problem, measured as for the MLP family
(``bpcheck.tolerances``: sensitivity reruns of the torch witness at ρ = 2u_d, same-dtype and
jax samples, e_i = SAFETY·(s_i + SPREAD·max_j s_j) + floor). What differs for layers:

* the reruns perturb every parameter, the input, float targets, every layer's output and the
  gradient flowing back into it (``reference.torch_stack.perturbed_gradients``);
* there is no worst-case S: no entry is widened to τ·S. A gradient that is zero up to
  rounding (a bias just before batch norm, which removes any per-channel shift) therefore
  cannot be settled: such a parameter's verdict is ``inconclusive``, and the reason says so;
* the floor counts m = (layers + 1)·(largest sample + N + 1) roundings;
* batch norm's running statistics (new values after the step) are judged against the
  same-dtype and jax samples and their own rounding, R·(u_d + u_64)·|r′|.
"""

from __future__ import annotations

import math

import numpy as np

from bpcheck.tolerances import (
    ROUNDINGS_PER_VALUE,
    SAFETY,
    SENSITIVITY_RUNS,
    SPREAD,
    rerun_perturbation,
    sensitivity,
    unit_roundoff,
)
from manual.stack import Stack, walk

Params = dict[str, np.ndarray]


def rounding_steps(stack: Stack, n: int) -> int:
    """m = (layers + 1)·(largest per-sample size + N + 1)."""
    largest = max(math.prod(shape) for shape in (stack.input_shape, *stack.shapes))
    return (len(list(walk(stack.layers))) + 1) * (largest + n + 1)


def underflow_floor(stack: Stack, n: int, dtype: str) -> float:
    """SAFETY·m·smallest normal number of dtype."""
    return SAFETY * rounding_steps(stack, n) * float(np.finfo(np.dtype(dtype)).smallest_normal)


def allowance(sens: np.ndarray, floor: float) -> np.ndarray:
    """e_i = SAFETY·(s_i + SPREAD·max_j s_j) + floor."""
    return SAFETY * (sens + SPREAD * np.max(sens, initial=0.0)) + floor


def measure(problem, torch_stack, truth: Params, others: list[Params], same_dtype: Params | None
            ) -> tuple[Params, Params, float]:
    """(rule allowance, witness allowance, floor) per gradient entry (parameters and ``x``).
    ``truth``: torch's float64 gradients; ``others``: more float64 answers (jax); ``same_dtype``:
    torch's answer computed in the problem's float32 (None in float64)."""
    p, dtype = problem.in_float64(), problem.stack.dtype

    def spread(rho: float) -> Params:
        reruns = torch_stack.perturbed_gradients(p.stack, p.params, p.x, p.y, p.masks, rho, SENSITIVITY_RUNS)
        return {name: np.max([np.abs(run[name] - truth[name]) for run in reruns], axis=0) for name in truth}

    spreads = {d: (rerun_perturbation(d), spread(rerun_perturbation(d))) for d in {dtype, "float64"}}

    def sens(computed_in: str, name: str, *samples: np.ndarray) -> np.ndarray:
        rho, delta = spreads[computed_in]
        return sensitivity(computed_in, delta[name], rho, truth[name], 1.0, *samples)

    samples = {name: [np.abs(other[name] - truth[name]) for other in others]
               + ([np.abs(same_dtype[name] - truth[name])] if same_dtype is not None else [])
               for name in truth}
    floor = underflow_floor(p.stack, p.n_samples, dtype)
    rule = {name: allowance(sens(dtype, name, *samples[name]), floor) for name in truth}
    witness = {name: allowance(sens("float64", name), underflow_floor(p.stack, p.n_samples, "float64"))
               for name in truth}
    return rule, witness, floor


def running_allowance(dtype: str, truth: Params, samples: list[Params], floor: float) -> Params:
    """Per running statistic: SAFETY·(s + SPREAD·max s) + floor, s the largest of the samples'
    distances from the truth and R·(u_d + u_64)·|r′|."""
    own = ROUNDINGS_PER_VALUE * (unit_roundoff(dtype) + unit_roundoff("float64"))
    return {name: allowance(np.maximum.reduce([own * np.abs(value)]
                                              + [np.abs(sample[name] - value) for sample in samples]), floor)
            for name, value in truth.items()}
