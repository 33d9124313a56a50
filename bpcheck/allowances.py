"""The allowances of one problem, measured (``bpcheck.tolerances`` says how and why)."""

from __future__ import annotations

from functools import cache

import numpy as np

from bpcheck.problem import Problem
from bpcheck.tolerances import (
    SENSITIVITY_RUNS,
    Conditioning,
    conditioning,
    gradient_allowance,
    magnitudes,
    measured_allowance,
    rerun_perturbation,
    saturation,
    sensitivity,
    underflow_floor,
)
from manual.spec import ACTIVATIONS, Params, Spec, param_shapes, parse_activation
from reference import SENSITIVITY_WITNESS, WITNESSES


def finite_difference_entries(spec: Spec, sample: int | None, seed: int = 0) -> np.ndarray | None:
    """Flat parameter indices to difference: all (None), or ``sample`` of them drawn without
    replacement by a generator seeded with ``seed`` (so a report can be repeated)."""
    total = sum(int(np.prod(shape)) for shape in param_shapes(spec).values())
    if sample is None or sample >= total:
        return None
    return np.sort(np.random.default_rng(seed).choice(total, size=sample, replace=False))


def measure_allowances(problem: Problem, truth: Params, others: list[Params]
                       ) -> tuple[Conditioning, Params, Params, Params, float, str, bool]:
    """(conditioning, magnitudes, rule allowance, witness allowance, floor, why zeros cannot be
    judged, whether anything flows back) for ``truth``, the sensitivity witness's float64
    gradient, and ``others``, more float64 answers whose differences from it count as the
    truth's own uncertainty (``bpcheck.tolerances``)."""
    p, dtype = problem.in_float64(), problem.spec.dtype
    witness = WITNESSES[SENSITIVITY_WITNESS]

    def spread(rho: float) -> Params:  # Δ_i of reruns perturbed by ρ
        reruns = witness.perturbed_gradients(p.spec, p.params, p.X, p.Y, rho, SENSITIVITY_RUNS)
        return {name: np.max([np.abs(run[name] - truth[name]) for run in reruns], axis=0)
                for name in truth}

    # each dtype's reruns at its own ρ: float64's noise floor (a cancelled sum's rounding) is
    # not float32's scaled down
    spreads = {d: (rerun_perturbation(d), spread(rerun_perturbation(d))) for d in {dtype, "float64"}}
    samples = {name: [np.abs(other[name] - truth[name]) for other in others] for name in truth}
    if dtype != "float64":  # a correct implementation in the rule's own dtype, on its own inputs
        same = witness.gradients(problem.spec, problem.params, problem.X, problem.Y,
                                 dtype=np.dtype(dtype).type)
        for name in truth:
            samples[name].append(np.abs(same[name] - truth[name]))
    cond, scale, inputs, zs, output = _forward_terms(p)
    data = data_gradients(p.spec, p.params, truth)

    def measured(computed_in: str, name: str, *same_dtype: np.ndarray) -> np.ndarray:
        rho, delta = spreads[computed_in]
        return measured_allowance(p.spec, p.n_samples, computed_in, sensitivity(
            computed_in, delta[name], rho, truth[name], cond.output_form, *same_dtype))

    def widened(allowed: np.ndarray, computed_in: str, name: str) -> np.ndarray:
        """At least τ·S at each entry where the data gradient is zero up to float64's own
        measured rounding of it (|g_i| ≤ e₆₄,i, exactly zero included): cancelled inside one vjp
        (a softmax's sums to zero whatever flows in), where a correct rule in the dtype leaves
        noise up to τ·S that no rerun shows — entry by entry, since a parameter can hold such
        entries beside ordinary ones. Where S is zero too (zero inputs or weights, dead units)
        the zero is exact."""
        noise = np.abs(data[name]) <= in_float64[name]
        if not noise.any():
            return allowed
        return np.where(noise, np.maximum(allowed, gradient_allowance(p.spec, p.n_samples, computed_in,
                                                                      live()[name], cond)), allowed)

    @cache
    def live() -> Params:
        return _live_magnitudes(p, inputs, zs, output)

    in_float64 = {name: measured("float64", name) for name in truth}
    rule = {name: widened(measured(dtype, name, *samples[name]), dtype, name) for name in truth}
    flows_back = any(np.any(gradient) for gradient in data.values())  # NaN counts as flowing
    return (cond, scale, rule, {name: widened(in_float64[name], "float64", name) for name in truth},
            underflow_floor(p.spec, p.n_samples, dtype), zero_reason(p.spec, flows_back, zs, output),
            flows_back)


#: How ``zero_reason`` begins where nothing flows back and no saturation explains it better.
NOTHING_FLOWS_BACK = "nothing flows back"


def zero_reason(spec: Spec, flows_back: bool, zs: list[np.ndarray], output: np.ndarray) -> str:
    """Why zeros cannot be judged here, "" if they can. Where nothing flows back (every entry of
    every data gradient exactly 0) a right rule and a wrong one give the same zeros, whatever
    scales them (a lost 1/N, a flipped δ), and a penalty's λθ beside them shows nothing of the
    backward pass: the reason names the last layer whose units are all dead on every sample,
    else the saturation that zeroed σ′ (``bpcheck.tolerances.saturation``, which also names an
    overflow), else just that. ``zs``: the float64 pre-activations, (N, units) per layer."""
    if not flows_back:
        for k in range(spec.depth, 0, -1):
            base, parameter = parse_activation(spec.activations[k - 1])
            dead = ACTIVATIONS[base].dead
            if dead is not None and np.all(dead(zs[k - 1], parameter)):
                return (f"{NOTHING_FLOWS_BACK}: every unit of layer {k} ({spec.activations[k - 1]}) "
                        "is dead on every sample, so every data gradient is exactly 0")
    reason = saturation(spec, zs, output)
    return reason or ("" if flows_back else f"{NOTHING_FLOWS_BACK}: every data gradient is exactly 0")


def data_gradients(spec: Spec, params: Params, gradients: Params) -> Params:
    """The gradients without the penalty's λW_k (on each weight's input columns) and, with
    ``l2_biases``, without its λ·bias (the bias node's column, or λb_k): what the backward
    pass through the data alone gives, exactly so where that is zero (the penalty's term is
    added last, and ½λ·‖θ‖²'s derivative is λθ exactly in binary arithmetic)."""
    data = dict(gradients)
    for k in range(1, spec.depth + 1):
        inputs, name = spec.sizes[k - 1], f"W{k}"
        columns = inputs + int(spec.l2_biases and spec.bias == "node")
        data[name] = gradients[name].copy()
        data[name][:, :columns] -= spec.l2 * np.asarray(params[name], np.float64)[:, :columns]
        if spec.l2_biases and spec.bias == "vector":
            data[f"b{k}"] = gradients[f"b{k}"] - spec.l2 * np.asarray(params[f"b{k}"], np.float64)
    return data


def worst_case_allowance(problem: Problem) -> tuple[Conditioning, Params]:
    """The conditioning and, per entry, the worst-case gradient bound τ·S + floor in the
    problem's dtype — the gradient error scale of end-to-end optimizer trajectories, whose
    reruns move every gradient entry by it (``bpcheck.tolerances``)."""
    p = problem.in_float64()
    cond, scale = _forward_terms(p)[:2]
    return cond, {name: gradient_allowance(p.spec, p.n_samples, problem.spec.dtype, S, cond)
                  for name, S in scale.items()}


def _live_magnitudes(p: Problem, inputs: list[np.ndarray], zs: list[np.ndarray],
                     output: np.ndarray) -> Params:
    """S with nothing flowing back through a unit whose derivative is exactly zero (a dead
    relu: its record's ``dead``). A saturated unit stays live: its σ′ only underflows, and a
    framework that takes σ′ from the output as σ(1 − σ) rounds it to 0 where a rule computing
    σ(z)·σ(−z) keeps e^{−|z|}. ``inputs``, ``zs``, ``output``: the forward pass already run."""
    live = []
    for name, z in zip(p.spec.activations, zs, strict=True):
        base, parameter = parse_activation(name)
        dead = ACTIVATIONS[base].dead
        live.append(np.ones_like(z) if dead is None else (~dead(z, parameter)).astype(np.float64))
    return magnitudes(p.spec, p.params, inputs, output, _targets(p), live)


def _targets(p: Problem) -> np.ndarray:
    """The targets as (N, C) rows, class labels one-hot."""
    targets = p.Y if p.spec.layout == "rows" else p.Y.T
    return np.eye(p.spec.sizes[-1])[targets] if targets.ndim == 1 else targets


def _forward_terms(p: Problem) -> tuple[Conditioning, Params, list[np.ndarray], list[np.ndarray],
                                        np.ndarray]:
    """From one float64 forward pass: the conditioning, the worst-case magnitudes S, the layer
    inputs, the pre-activations and the output."""
    inputs, zs, output = WITNESSES["numeric"].module.forward(p.spec, p.params, p.X)  # loads on use
    return (conditioning(p.spec, zs, output), magnitudes(p.spec, p.params, inputs, output, _targets(p)),
            inputs, zs, output)
