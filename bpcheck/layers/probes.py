r"""What a user's layer does at one draw, measured with its own torch forward (float64): it is
opaque to the allowances (``bpcheck.layers.allowances``), so ``bpcheck.user.layer_check`` asks it.

* **Flat** (saturated): an output entry y_i that barely responds to the layer's input z. Along
  a random direction v (entries N(0, 1)·max(1, max|z|): a step of the input's scale, and of 1
  for small inputs, so that a layer is not called flat for being fed small values), the
  central difference d = (f(z + hv) − f(z − hv))/2h, h = 10⁻⁶, estimates Jv (to ~10⁻¹⁰ of
  max|y|); y_i is *flat* where y_i ≠ 0 and |d_i| ≤ FLAT·max|y|. Exact zeros (a dead ReLU) are
  left out: they are not saturation. For y = tanh(a), |d| ≈ 4e^{−2|a|}·|a| falls below 10⁻² at
  |a| ≳ 3.7 (κ_out = 2cosh²a ≳ 800); for batch norm over two values, x̂ = ±d/√(d² + ε), the
  response is ε/(d² + ε) of a normal one, and its gradient a cancellation of terms that much
  larger: at 10⁻³ a correct float32 batch norm was 1.2× over its allowance (seen). A draw
  where more than MOST_FLAT of the entries are flat is not drawn (a gated layer at input scale
  10², batch norm over two values of scale 1).
* **Removed**: a parameter θ (or x) before the layer whose change the layer
  all but removes — a bias before a normalisation, which takes any per-channel shift away — has
  a gradient that is a cancellation inside the layer: exactly 0, or (a tanh between them, over
  inputs that barely vary) a sum of terms ≥ 1/NEAR times larger, whose rounding the opaque
  layer hides from the allowances (a correct float32 batch norm after tanh, at C ≈ 10³, was
  1.2× over its allowance; seen). With Δz_k and Δy_k the changes of the layer's input and
  output when θ moves by k·hv (h = 10⁻⁵·max|θ|, v random), θ is *removed* where
  max|Δy_1| ≤ NEAR·G·max|Δz_1|, G = max|Jv|/max|v| the layer's gain along a random direction
  (above) — the output moves less than 1/100 of what the layer makes of a change of its
  input — or where Δy is rounding: max|Δy_1| ≤ NOISE·max|Δy_2 − 2Δy_1| (a response is linear
  in h, its residual O(h²), ~10⁵ times smaller; noise is about as large as its residual;
  0 ≤ 0 included). Its gradient is then not judged, and the reason says why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from bpcheck.core.compare import Row, RuleReport
from bpcheck.core.witness_rows import compare_witnesses
from bpcheck.layers.compare import (
    StackRule,
    StackTruth,
    ask_stack_witnesses,
    behind_user_layers,
    compare_stack_rule,
    torch_differences,
)
from bpcheck.layers.problem import StackProblem
from reference import torch_stack

#: An entry responds less than this share of the output's scale to a step of the input's scale:
#: its gradient cancels terms ≥ 100× larger, or a unit inside is saturated (above).
FLAT = 1e-2
#: A draw where more than this share of the layer's (nonzero) output entries is flat is not drawn.
MOST_FLAT = 0.5
#: Δy_1 within this multiple of the residual Δy_2 − 2Δy_1 is rounding, not a response.
NOISE = 4.0
#: θ's change reaches the output at less than this share of the layer's gain: removed (above).
NEAR = 1e-2


def _layer(problem: StackProblem, name: str) -> Callable[[dict, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(params, x) ↦ (input, output) of the layer called ``name``, by torch in float64."""
    p = problem.in_float64()
    masks = {k: torch.tensor(np.asarray(v, np.float64)) for k, v in p.masks.items()}

    def run(params: dict, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        inputs, _ = torch_stack.layer_inputs(p.stack, params, x, p.masks)
        layer, z = next((layer, z) for layer, z in inputs if layer.name == name)
        t = {k: torch.tensor(np.asarray(v, np.float64)) for k, v in params.items()}
        with torch.no_grad():
            return z, torch_stack.layer_output(layer, torch.tensor(z), t, masks).numpy()
    return run


def flat_share(problem: StackProblem, name: str, seed: int = 0) -> tuple[float, float]:
    """(the share of the nonzero output entries of layer ``name`` that are flat, its gain G)."""
    p = problem.in_float64()
    run = _layer(p, name)
    z, y = run(p.params, p.x)
    if not np.issubdtype(z.dtype, np.floating):  # tokens: a lookup, linear in its table
        return 0.0, 1.0
    layer = next(layer for layer in p.stack.layers if layer.name == name)
    t = {k: torch.tensor(np.asarray(v, np.float64)) for k, v in p.params.items()}
    masks = {k: torch.tensor(np.asarray(v, np.float64)) for k, v in p.masks.items()}

    def f(a: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch_stack.layer_output(layer, torch.tensor(a), t, masks).numpy()

    h = 1e-6
    v = np.random.default_rng(seed).standard_normal(z.shape) * max(1.0, float(np.max(np.abs(z), initial=0.0)))
    d = (f(z + h * v) - f(z - h * v)) / (2 * h)
    gain = float(np.max(np.abs(d), initial=0.0) / np.max(np.abs(v), initial=1.0))
    live = y != 0
    if not np.any(live):
        return 0.0, gain
    flat = live & (np.abs(d) <= FLAT * float(np.max(np.abs(y))))
    return float(np.count_nonzero(flat) / np.count_nonzero(live)), gain


def removed(problem: StackProblem, name: str, candidates: list[str], gain: float, seed: int = 0) -> list[str]:
    """The ``candidates`` (parameters, or "x") whose change layer ``name`` all but removes
    (above); ``gain``: its G from ``flat_share``."""
    p, rng = problem.in_float64(), np.random.default_rng(seed)
    run, found = _layer(p, name), []
    z0, y0 = run(p.params, p.x)
    for candidate in candidates:
        value = p.x if candidate == "x" else p.params[candidate]
        step = 1e-5 * (float(np.max(np.abs(value), initial=0.0)) or 1.0) * rng.standard_normal(value.shape)

        def moved(k: int, candidate=candidate, value=value, step=step) -> tuple[float, np.ndarray]:
            z, y = (run(p.params, value + k * step) if candidate == "x"
                    else run(p.params | {candidate: value + k * step}, p.x))
            return float(np.max(np.abs(z - z0), initial=0.0)), y - y0

        (dz, first), (_, second) = moved(1), moved(2)
        dy = float(np.max(np.abs(first), initial=0.0))
        noise = float(np.max(np.abs(second - 2 * first), initial=0.0))
        if dy <= NOISE * noise or (dz > 0 and dy <= NEAR * gain * dz):
            found.append(candidate)
    return found


def judged_gap(gradients: dict, allowance: dict, parameter: str) -> float:
    """max|jax − torch| over the entries the witnesses' allowance judges (finite), relative to
    max|torch|: where float32 lost an entry (a saturated unit inside the layer), the two
    frameworks may round apart by far more than elsewhere, and that is no evidence."""
    torch_g, jax_g = gradients["torch"][parameter], gradients["jax"][parameter]
    judged = np.isfinite(allowance[parameter])
    gap = float(np.max(np.abs(jax_g - torch_g), where=judged, initial=0.0))
    scale = float(np.max(np.abs(torch_g), initial=0.0))
    return gap / scale if scale else (0.0 if gap == 0 else np.inf)


def removed_reason(zeros: list[str]) -> str:
    one = len(zeros) == 1
    return (f"the gradient of {', '.join(zeros)} cancels inside your layer: its output changes by "
            "less than 1/100 of what it makes of its input's change when "
            f"{'it changes' if one else 'they change'} "
            "(measured with your torch forward: a bias that a normalisation removes, units saturated "
            "inside it, or a saturated layer before it), so it is 0 or nearly and rounding that bpcheck "
            "cannot see dominates "
            f"it: {'it is' if one else 'they are'} not judged")


def not_judged(truth: StackTruth, zeros: list[str]) -> StackTruth:
    """``truth`` with the allowances of ``zeros`` infinite, and the reason said first."""
    def infinite(allowed: dict) -> dict:
        return {name: np.full_like(e, np.inf) if name in zeros else e for name, e in allowed.items()}
    reason = "; ".join(filter(None, [truth.saturation, removed_reason(zeros)]))
    return replace(truth, allowance=infinite(truth.allowance),
                   witness_allowance=infinite(truth.witness_allowance), saturation=reason)


def compare_user_layer(problem: StackProblem, rule: StackRule, name: str, gain: float,
                       own_forward: bool = True, finite_differences: bool | str = True,
                       truth: StackTruth | None = None) -> tuple[RuleReport, list[Row], StackTruth]:
    """``bpcheck.layers.compare.compare_stack`` for one rule, where the gradients that layer
    ``name`` (of gain G) removes are not judged; ``own_forward``: with the rows of finite
    differences of the rule's own forward. ``finite_differences`` as ``ask_stack_witnesses``
    takes them: True by projection, "all" entry by entry — where the report tells a wrong
    backward from a wrong forward entry by entry (``bpcheck.user.layer_report``), as projections
    cannot. ``truth``: the witnesses' answer asked already (finite differences of every entry
    replace any it holds)."""
    if truth is not None:
        truth = with_every_entry(truth, problem) if finite_differences else truth
    else:
        truth = ask_stack_witnesses(problem, finite_differences)
        before = [key for key in behind_user_layers(problem.stack) if not key.startswith(f"{name}.")]
        zeros = [key for key in removed(problem, name, before, gain) if key in truth.allowance]
        if zeros:
            truth = not_judged(truth, zeros)
    return compare_stack_rule(rule, problem, truth, own_forward), compare_witnesses(problem, truth), truth


def with_every_entry(truth: StackTruth, problem: StackProblem) -> StackTruth:
    """``truth`` with the finite differences of torch's forward on every entry that
    ``ask_stack_witnesses(problem, "all")`` would have asked with it, in place of its projections."""
    fd, error = torch_differences(problem.in_float64())
    return replace(truth, gradients=truth.gradients | {"numeric": fd},
                   errors=truth.errors | {"numeric": error}, projections={})
