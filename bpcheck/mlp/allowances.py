"""The allowances of one problem, measured (``bpcheck.core.tolerances`` says how and why)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np

from bpcheck.core.tolerances import (
    OUTPUT_FORM_LIMIT,
    SAFETY,
    SATURATED,
    SENSITIVITY_RUNS,
    Conditioning,
    gradient_allowance,
    measured_allowance,
    mlp_rounding_steps,
    rerun_perturbation,
    saturation,
    sensitivity,
    underflow_floor,
    unit_roundoff,
    worst_conditioning,
)
from bpcheck.mlp.problem import Problem
from manual.spec import ACTIVATIONS, LOSSES, Params, Spec, param_shapes, parse_activation
from reference import SENSITIVITY_WITNESS, WITNESSES


def finite_difference_entries(spec: Spec, sample: int | None, seed: int = 0) -> np.ndarray | None:
    """Flat parameter indices to difference: all (None), or ``sample`` of them drawn without
    replacement by a generator seeded with ``seed`` (so a report can be repeated)."""
    total = sum(int(np.prod(shape)) for shape in param_shapes(spec).values())
    if sample is None or sample >= total:
        return None
    return np.sort(np.random.default_rng(seed).choice(total, size=sample, replace=False))


def measure_allowances(problem: Problem, truth: Params, others: list[Params] | Callable[[], list[Params]]
                       ) -> tuple[Conditioning, Params, Params, float, str, bool]:
    """(conditioning, rule allowance, witness allowance, floor, why zeros cannot be
    judged, whether anything flows back) for ``truth``, the sensitivity witness's float64
    gradient, and ``others``, more float64 answers whose differences from it count as the
    truth's own uncertainty (``bpcheck.core.tolerances``); or the call that returns them, made
    after the reruns (a witness still computing finishes meanwhile)."""
    p, dtype = problem.in_float64(), problem.spec.dtype
    witness = WITNESSES[SENSITIVITY_WITNESS]

    def spread(rho: float) -> Params:  # Δ_i of reruns perturbed by ρ
        reruns = witness.perturbed_gradients(p.spec, p.params, p.X, p.Y, rho, SENSITIVITY_RUNS)
        return {name: np.abs(np.stack([run[name] for run in reruns]) - truth[name]).max(axis=0)
                for name in truth}

    # each dtype's reruns at its own ρ: float64's noise floor (a cancelled sum's rounding) is
    # not float32's scaled down
    spreads = {d: (rerun_perturbation(d), spread(rerun_perturbation(d))) for d in {dtype, "float64"}}
    others = others() if callable(others) else others
    samples = {name: [np.abs(other[name] - truth[name]) for other in others] for name in truth}
    if dtype != "float64":  # a correct implementation in the rule's own dtype, on its own inputs
        same = witness.gradients(problem.spec, problem.params, problem.X, problem.Y,
                                 dtype=np.dtype(dtype).type)
        for name in truth:
            samples[name].append(np.abs(same[name] - truth[name]))
    inputs, zs, output = WITNESSES["numeric"].module.forward(p.spec, p.params, p.X)  # S is not needed here
    cond = worst_conditioning(p.spec, zs, output)
    data = data_gradients(p.spec, p.params, truth)
    rest, kappas = split_saturation(p.spec, zs, output)
    paths = {d: saturated_paths_bound(p, inputs, output, _live(p, zs), kappas, unit_roundoff(d))
             for d in {dtype, "float64"}}

    def sensitive(computed_in: str, name: str, *same_dtype: np.ndarray) -> np.ndarray:
        rho, delta = spreads[computed_in]
        return sensitivity(computed_in, delta[name], rho, truth[name], rest.output_form, *same_dtype,
                           saturated=paths["float64"][name])

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
        worst = (gradient_allowance(p.spec, p.n_samples, computed_in, live()[name], rest)
                 + SAFETY * (paths[computed_in][name] + paths["float64"][name]))
        return np.where(noise, np.maximum(allowed, worst), allowed)

    @cache
    def live() -> Params:
        return _live_magnitudes(p, inputs, zs, output, kappas)

    own = {name: sensitive("float64", name) for name in truth}
    in_float64 = {name: measured_allowance(p.spec, p.n_samples, "float64", own[name]) for name in truth}
    if dtype == "float64":  # the same s_i with the samples beside it: max(max(a, b), c) = max(a, b, c)
        own = {name: np.maximum.reduce([own[name], *samples[name]]) for name in truth}
    else:
        own = {name: sensitive(dtype, name, *samples[name]) for name in truth}
    rule = {name: widened(measured_allowance(p.spec, p.n_samples, dtype, own[name]), dtype, name)
            for name in truth}
    flows_back = any(np.any(gradient) for gradient in data.values())  # NaN counts as flowing
    floor = underflow_floor(mlp_rounding_steps(p.spec, p.n_samples), dtype)
    return (cond, rule, {name: widened(in_float64[name], "float64", name) for name in truth},
            floor, no_flow_reason(p.spec, flows_back, zs, output), flows_back)


#: How ``no_flow_reason`` begins where nothing flows back and no saturation explains it better.
NOTHING_FLOWS_BACK = "nothing flows back"


def no_flow_reason(spec: Spec, flows_back: bool, zs: list[np.ndarray], output: np.ndarray) -> str:
    """Why zeros cannot be judged here, "" if they can. Where nothing flows back (every entry of
    every data gradient exactly 0) a right rule and a wrong one give the same zeros, whatever
    scales them (a lost 1/N, a flipped δ), and a penalty's λθ beside them shows nothing of the
    backward pass: the reason names the last layer whose units are all dead on every sample,
    else the saturation that zeroed σ′ (``bpcheck.core.tolerances.saturation``, which also names an
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
    reruns move every gradient entry by it (``bpcheck.core.tolerances``)."""
    p = problem.in_float64()
    cond, scale = _forward_terms(p)[:2]
    return cond, {name: gradient_allowance(p.spec, p.n_samples, problem.spec.dtype, S, cond)
                  for name, S in scale.items()}


def _live_magnitudes(p: Problem, inputs: list[np.ndarray], zs: list[np.ndarray],
                     output: np.ndarray, kappas: list[np.ndarray]) -> Params:
    """S with nothing flowing back through a unit whose derivative is exactly zero (a dead
    relu: its record's ``dead``), and through a saturated unit only its own |σ′| ≤ b/κ (b the
    derivative bound S takes, κ its κ_out; its rounding is P's, ``saturated_paths_bound``). A
    saturated unit stays live: its σ′ only underflows, and a framework that takes σ′ from the
    output as σ(1 − σ) rounds it to 0 where a rule computing σ(z)·σ(−z) keeps e^{−|z|}.
    ``inputs``, ``zs``, ``output``: the forward pass already run; ``kappas``: ``split_saturation``'s."""
    live = [on / np.where(kappa > 0, kappa, 1.0) for on, kappa in zip(_live(p, zs), kappas, strict=True)]
    return magnitudes(p.spec, p.params, inputs, output, _targets(p), live)


def _live(p: Problem, zs: list[np.ndarray]) -> list[np.ndarray]:
    """Per layer (N, units): 0 where a unit's derivative is exactly zero (its record's ``dead``)."""
    live = []
    for name, z in zip(p.spec.activations, zs, strict=True):
        base, parameter = parse_activation(name)
        dead = ACTIVATIONS[base].dead
        live.append(np.ones_like(z) if dead is None else (~dead(z, parameter)).astype(np.float64))
    return live


def split_saturation(spec: Spec, zs: list[np.ndarray], output: np.ndarray
                     ) -> tuple[Conditioning, list[np.ndarray]]:
    """(the conditioning of all but the saturated units, κ_out per layer (N, units) at the
    saturated units and 0 elsewhere). A unit is saturated where its activation's κ_out >
    SATURATED, unless the activation mixes units (softmax, whose vjp spreads one unit's error
    over its row): its κ stays in the rest, with the loss's. z_max too is over the rest: a
    saturated unit's σ′ moved by its z's rounding is part of its own bound (``saturated_paths_bound``)."""
    rest, z_rest, kappas = 1.0, 0.0, []
    for name, z in zip(spec.activations, zs, strict=True):
        record = ACTIVATIONS[parse_activation(name)[0]]
        form = record.output_form_condition
        if not (form and z.size):  # κ ≡ 1 (≤ SATURATED): nothing saturated, rest unchanged (≥ 1)
            z_rest = max(z_rest, float(np.abs(z).max(initial=0.0)))
            kappas.append(np.zeros(z.shape))
            continue
        kappa = form(z)
        kappa = np.broadcast_to(kappa if kappa.ndim == z.ndim else kappa[:, None], z.shape)
        saturated = (kappa > SATURATED) & (not record.across_outputs)
        rest = max(rest, float(np.max(kappa, where=~saturated, initial=1.0)))
        z_rest = max(z_rest, float(np.max(np.abs(z), where=~saturated, initial=0.0)))
        kappas.append(np.where(saturated, kappa, 0.0))
    if (loss_condition := LOSSES[spec.loss].condition) is not None:
        rest = max(rest, float(np.max(loss_condition(zs[-1], output), initial=1.0)))
    return Conditioning(z_rest, rest), kappas


def saturated_paths_bound(p: Problem, inputs: list[np.ndarray], output: np.ndarray, live: list[np.ndarray],
                    kappas: list[np.ndarray], u: float) -> Params:
    """P: how far σ′ taken from a saturated unit's output rounded by ``u`` can move each
    gradient entry (the saturated units: ``kappas`` > 0, from ``split_saturation``).

    σ̂ = σ(1 + ε), |ε| ≤ u, makes σ̂′ off by u·κ·|σ′| (κ the record's
    ``output_form_condition``), and by no more than OUTPUT_FORM_LIMIT·|σ′| (where σ is within
    u/2 of its limit it rounds to it and σ̂′ = 0; elsewhere u·κ ≤ 4): off by at most
    |σ′|·min(u·κ, 4) ≤ b·min(u, 4/κ), since κ·|σ′| ≤ b, the record's derivative bound that S
    takes (tanh: 2cosh²z·sech²z = 2; sigmoid: (1 + e^{|z|})·σ(z)σ(−z) = σ(|z|) ≤ 1;
    ``tests/test_saturation.py`` checks both). So a saturated unit (n, j) of layer k puts at
    most b·min(u, 4/κ)·|∂L/∂a_k[n, j]| into δ_k[n, j] — the truth (u_64) or a rule in dtype d
    (u_d) — and that error reaches a gradient entry only along the backward paths through (n, j):

        |error_i| ≤ Σ_{saturated (k, n, j)} b·min(u, 4/κ)·|∂L/∂a_k[n, j]|·|path from δ_k[n, j] to i|
                  ≤ P_i,

    P the worst-case magnitude S (``magnitudes``: |∂L/∂a_k| bounded from the
    forward values, |W| and derivative bounds) with each saturated unit of layer k weighted by
    min(u, 4/κ) and nothing flowing back through the other units of layer k — one pass per
    layer holding a saturated unit, summed, without the penalty's λ|θ| (which no σ′ scales).
    P_i is 0 for an entry no saturated unit reaches (the layers after it, the rows of other
    units), and vanishes as the unit saturates further: a saturated unit widens only the
    allowances of what it feeds, by what it can carry. R·P_i (u = u_64) takes the place of
    R·u_64·κ_out·|g_i|, with which one unit at |z| = 30 made every entry's allowance 10²⁵·|g_i|."""
    paths = {name: np.zeros(np.shape(value)) for name, value in p.params.items()}
    for k, kappa in enumerate(kappas):
        if kappa.any():
            plain = p.spec.replace(l2=0.0, l2_biases=False)
            weight = np.where(kappa > 0, np.minimum(u, OUTPUT_FORM_LIMIT / np.maximum(kappa, 1.0)), 0.0)
            through = [on * weight if i == k else on for i, on in enumerate(live)]
            found = magnitudes(plain, p.params, inputs, output, _targets(p), through)
            paths = {name: paths[name] + found[name] if int(name[1:]) <= k + 1 else paths[name]
                     for name in paths}  # W_j, b_j of the layers after it are not reached
    return paths


def _targets(p: Problem) -> np.ndarray:
    """The targets as (N, C) rows, class labels one-hot."""
    targets = p.Y if p.spec.layout == "rows" else p.Y.T
    return np.eye(p.spec.sizes[-1])[targets] if targets.ndim == 1 else targets


def _forward_terms(p: Problem) -> tuple[Conditioning, Params, list[np.ndarray], list[np.ndarray],
                                        np.ndarray]:
    """From one float64 forward pass: the conditioning, the worst-case magnitudes S, the layer
    inputs, the pre-activations and the output."""
    inputs, zs, output = WITNESSES["numeric"].module.forward(p.spec, p.params, p.X)  # loads on use
    return (worst_conditioning(p.spec, zs, output), magnitudes(p.spec, p.params, inputs, output, _targets(p)),
            inputs, zs, output)


def magnitudes(spec: Spec, params: dict[str, np.ndarray], layer_inputs: list[np.ndarray],
               output: np.ndarray, targets: np.ndarray,
               live: list[np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """S per parameter entry: the backward pass on absolute values (docs/explanation/tolerances.md,
    "The worst case").

    ``layer_inputs`` are ã_0 … ã_{L-1} as (N, width) rows (bias-node ones included), ``output``
    is a_L and ``targets`` y as (N, C) rows (class labels as one-hot rows); all float64.
    ``live``, per layer (N, units), is 0 where a unit's derivative is exactly zero (a dead
    relu): nothing flows back through it. Where S overflows it is +∞: the worst case then
    bounds nothing.
    """
    with np.errstate(over="ignore"):
        return _magnitudes(spec, params, layer_inputs, output, targets, live)


def _magnitudes(spec: Spec, params: dict[str, np.ndarray], layer_inputs: list[np.ndarray],
                output: np.ndarray, targets: np.ndarray,
                live: list[np.ndarray] | None) -> dict[str, np.ndarray]:
    n = output.shape[0]
    terms = np.abs(output) + np.abs(targets) + np.abs(targets).sum(axis=1, keepdims=True) + 1.0
    if LOSSES[spec.loss].divides_by_variance:
        terms = terms / np.maximum(output * (1.0 - output), 1e-12)
    upstream = 2.0 * terms / (n if spec.reduction == "mean" else 1)
    scale: dict[str, np.ndarray] = {}
    for k in range(spec.depth, 0, -1):
        base, parameter = parse_activation(spec.activations[k - 1])
        delta = ACTIVATIONS[base].derivative_bound * max(1.0, abs(parameter or 0.0)) * upstream
        if live is not None:
            delta = delta * live[k - 1]
        weights = np.abs(params[f"W{k}"][:, : spec.sizes[k - 1]])
        scale[f"W{k}"] = delta.T @ np.abs(layer_inputs[k - 1])
        scale[f"W{k}"][:, : spec.sizes[k - 1]] += spec.l2 * weights
        if spec.l2_biases and spec.bias == "node":  # the penalty's λ|bias| on the bias column
            scale[f"W{k}"][:, spec.sizes[k - 1]] += spec.l2 * np.abs(params[f"W{k}"][:, spec.sizes[k - 1]])
        if spec.bias == "vector":
            scale[f"b{k}"] = delta.sum(axis=0)
            if spec.l2_biases:
                scale[f"b{k}"] = scale[f"b{k}"] + spec.l2 * np.abs(params[f"b{k}"])
        upstream = delta @ weights
    return {name: scale[name] for name in params}
