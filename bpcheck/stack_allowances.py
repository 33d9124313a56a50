"""The allowances of one network-of-layers problem, measured as for the MLP family
(``bpcheck.tolerances``: sensitivity reruns of the torch witness at ρ = 2u_d, same-dtype and
jax samples, e_i = SAFETY·(s_i + SPREAD·max_j s_j) + floor). What differs for layers:

* the reruns perturb every parameter, the input, float targets, every layer's output and the
  gradient flowing back into it (``reference.torch_stack.perturbed_gradients``);
* there is no worst-case S: no entry is widened to τ·S. A gradient that is zero up to
  rounding (a bias just before batch norm, which removes any per-channel shift) therefore
  cannot be settled: such a parameter's verdict is ``inconclusive``, and the reason says so;
* the floor counts m = (layers + 1)·(largest sample + N + 1) roundings;
* κ_out, the truth's own conditioning where frameworks differentiate from an activation's
  output (tanh′ = 1 − tanh², …), is the largest over the activation layers' inputs and the
  loss (the records' ``output_form_condition`` and ``condition``). Above SATURATED the reason
  names the saturated layer, and a gradient that is exactly 0 is not taken as settled; where
  κ_out·u_64 ≥ 1 some output rounded to its limit (tanh to ±1), so an entry the float64 truth
  gives as exactly 0 may be a derivative that rounded to 0 there (1 − tanh² = 0 where a rule's
  4e^{−2|z|} is not): every exactly-zero entry then gets allowance ∞ and is not judged;
* batch norm's running statistics after the step are measured like gradients: the reruns
  carry them too (a batch mean that cancels shows there).
"""

from __future__ import annotations

import math

import numpy as np

from bpcheck.tolerances import (
    SAFETY,
    SATURATED,
    SENSITIVITY_RUNS,
    SPREAD,
    rerun_perturbation,
    sensitivity,
    unit_roundoff,
)
from manual.spec import ACTIVATIONS, LOSSES, parse_activation
from manual.stack import ACTIVATION, Stack, walk

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


def conditioning(problem, torch_stack) -> tuple[float, str]:
    """(κ_out, the saturated layer or loss if κ_out > SATURATED, else "") from torch's float64
    forward pass."""
    p = problem.in_float64()
    inputs, output = torch_stack.layer_inputs(p.stack, p.params, p.x, p.masks)
    kappa, where = 1.0, ""
    for layer, x in inputs:
        if layer.kind != ACTIVATION:
            continue
        condition = ACTIVATIONS[parse_activation(layer.activation)[0]].output_form_condition
        worst = float(np.max(condition(x), initial=1.0)) if condition else 1.0
        if worst > kappa:
            kappa = worst
            if worst > SATURATED:
                where = (f"{layer} ({layer.activation}) is saturated: its input reaches "
                         f"{float(np.max(np.abs(x))):.3g}, where its derivative underflows")
    loss_condition = LOSSES[p.stack.loss].condition
    if loss_condition is not None:
        worst = float(np.max(loss_condition(output, output), initial=1.0))
        if worst > kappa:
            kappa, where = worst, (f"the {p.stack.loss} loss is saturated" if worst > SATURATED else where)
    return kappa, where


def measure(problem, torch_stack, truth: Params, others: list[Params], same_dtype: Params | None,
            output_form: float = 1.0) -> tuple[Params, Params, float]:
    """(rule allowance, witness allowance, floor) per entry of ``truth``: torch's float64
    gradients (parameters and ``x``) and running statistics after the step; ``others``: more
    float64 answers (jax's); ``same_dtype``: torch's computed in the problem's float32 (None in
    float64)."""
    p, dtype = problem.in_float64(), problem.stack.dtype

    def spread(rho: float) -> Params:
        reruns = torch_stack.perturbed_gradients(p.stack, p.params, p.x, p.y, p.masks, rho, SENSITIVITY_RUNS,
                                                 buffers=p.buffers)
        return {name: np.max([np.abs(run[name] - truth[name]) for run in reruns], axis=0) for name in truth}

    spreads = {d: (rerun_perturbation(d), spread(rerun_perturbation(d))) for d in {dtype, "float64"}}

    def sens(computed_in: str, name: str, *samples: np.ndarray) -> np.ndarray:
        rho, delta = spreads[computed_in]
        return sensitivity(computed_in, delta[name], rho, truth[name], output_form, *samples)

    samples = {name: [np.abs(other[name] - truth[name]) for other in others]
               + ([np.abs(same_dtype[name] - truth[name])] if same_dtype is not None else [])
               for name in truth}
    floor = underflow_floor(p.stack, p.n_samples, dtype)
    rule = {name: allowance(sens(dtype, name, *samples[name]), floor) for name in truth}
    witness = {name: allowance(sens("float64", name), underflow_floor(p.stack, p.n_samples, "float64"))
               for name in truth}
    if output_form * unit_roundoff("float64") >= 1:  # an output rounded to its limit (tanh to ±1):
        # a derivative taken from it (1 − tanh²) is exactly 0, the rule's e^{−2|z|} need not be
        rule, witness = ({name: np.where(truth[name] == 0, np.inf, e) for name, e in allowed.items()}
                         for allowed in (rule, witness))
    return rule, witness, floor
