"""The allowances of one network-of-layers problem, measured as for the MLP family
(``bpcheck.core.tolerances``: sensitivity reruns of the torch witness at ρ = 2u_d, same-dtype and
jax samples, e_i = SAFETY·(s_i + SPREAD·max_j s_j) + floor). What differs for layers:

* the reruns perturb every parameter, the input, float targets, every layer's output and the
  gradient flowing back into it (``reference.torch_stack.perturbed_gradients``);
* there is no worst-case S: no entry is widened to τ·S. A gradient that is zero up to
  rounding (a bias just before batch norm, which removes any per-channel shift) therefore
  cannot be settled: such a parameter's verdict is ``inconclusive``, and the reason says so;
* the floor counts m = (layers + 1)·(largest sample + N + 1) roundings;
* κ_out, the truth's own conditioning where frameworks differentiate from an activation's
  output (tanh′ = 1 − tanh², …), is taken per gradient: the largest over the activations its
  backward path goes through (the layers after its own) and the loss, from the records'
  ``output_form_condition`` and ``condition``; inside a recurrent layer every gate's input at
  every step counts (tanh, σ), and inside attention every row of scores (softmax), and their
  κ reaches the layer's own parameters too. The saturated entries of activation layers (up to
  PATH_PASSES) are taken out of κ_out and bound their own error along their own backward paths
  (``saturated_paths_traced``), as in the MLP. Above SATURATED the reason names the saturated
  layer, and a gradient that is exactly 0 is not taken as settled; where κ_out·u_64 ≥ 1 an
  output rounded to its limit (tanh to ±1), so an entry of that gradient the float64 truth
  gives as exactly 0 may be a derivative that rounded to 0 (1 − tanh² = 0 where a rule's
  4e^{−2|z|} is not): those exact zeros get allowance ∞ and are not judged; the gradient's
  other entries still are;
* batch norm's running statistics after the step are measured like gradients: the reruns
  carry them too (a batch mean that cancels shows there);
* a user's layer (``bpcheck.user.layer``) is opaque: neither the reruns nor κ_out see inside
  it (a tanh it saturates). In float64 its network is also computed by torch in float32, and
  that answer's error, times u_64/u_32, joins the samples: the float64 rounding a correct
  layer that computes the same thing another way may show. Where float32 is off by
  FLOAT32_LOST of the entry or more (a tanh inside nearly saturated), that bound is not to be
  trusted, and the entry is not judged (allowance ∞, and the reason says so). Only the
  gradients whose backward path runs through the user's layer are concerned.
"""

from __future__ import annotations

import math

import numpy as np

from bpcheck.core.tolerances import (
    FLOAT32_LOST,
    OUTPUT_FORM_LIMIT,
    SATURATED,
    SENSITIVITY_RUNS,
    rerun_perturbation,
    rounding_steps,
    sensitivity,
    spread_allowance,
    underflow_floor,
    unit_roundoff,
)
from manual.spec import ACTIVATIONS, LOSSES, Params, parse_activation
from manual.stack import ACTIVATION, LAYER_KINDS, Stack, layer_inputs, walk

#: layers with activations inside: the recurrent kinds and attention
INNER = (*(name for name, kind in LAYER_KINDS.items() if kind.gates), "attention")


def stack_rounding_steps(stack: Stack, n: int) -> int:
    """m = (layers + 1)·(largest per-sample size + N + 1) (``bpcheck.core.tolerances.rounding_steps``)."""
    largest = max(math.prod(shape) for shape in (stack.input_shape, *stack.shapes))
    return rounding_steps(len(list(walk(stack.layers))), largest, n)


def one_key(stack: Stack) -> tuple[set[str], str]:
    """(parameters, reason) that no rule can show a mistake in: attention on one step takes its
    softmax over one key, P ≡ 1, whose Jacobian is 0, so the scores' parameters (W_q, b_q, W_k)
    get exactly 0 whatever a rule does on the way to them. Their exact zeros are not judged."""
    layers = [layer for layer, shape in layer_inputs(stack)
              if layer.kind == "attention" and layer.projections and shape[0] == 1]
    names = {f"{layer}.{name}" for layer in layers for name in ("W_q", "b_q", "W_k")
             if name in layer.parameters}
    if not names:
        return set(), ""
    return names, (f"{', '.join(sorted(names))} cannot be settled: a softmax over one key (T = 1) "
                   "is 1 whatever its scores, so their gradient is 0 whatever a rule computes on the "
                   "way to them (draw T ≥ 2)")


#: Saturated entries of activation layers each bounded by their own backward paths, at most
#: (one backward pass each, ``saturated_paths_traced``); beyond that a saturated layer's κ_out scales
#: every gradient it reaches, as before.
PATH_PASSES = 64


def conditioning_per_gradient(problem, torch_stack) -> tuple[dict[str, float], str, Params]:
    """(κ_out per gradient key, the saturated layer or loss if some κ_out > SATURATED, else "",
    P per gradient key) from torch's float64 forward pass. An activation's κ reaches only what
    its derivative multiplies — the parameters of the layers before it, and x — and the loss's
    reaches every gradient; running statistics (forward values) get 1. The saturated entries
    (κ > SATURATED) of activation layers, if PATH_PASSES or fewer, are taken out of κ_out and
    bound their own error instead (P, ``saturated_paths_traced``)."""
    p = problem.in_float64()
    inputs, output = torch_stack.layer_inputs(p.stack, p.params, p.x, p.masks)
    loss_condition = LOSSES[p.stack.loss].condition
    loss_kappa = float(np.max(loss_condition(output, output), initial=1.0)) if loss_condition else 1.0
    where = f"the {p.stack.loss} loss is saturated" if loss_kappa > SATURATED else ""
    kappas, inner, entries = [], [], {}  # κ of each layer in forward order (1 where no activation)
    for i, (layer, x) in enumerate(inputs):
        record = ACTIVATIONS[parse_activation(layer.activation)[0]] if layer.kind == ACTIVATION else None
        condition = record.output_form_condition if record else None
        kappa = condition(x) if condition else np.ones(1)
        kappas.append(float(np.max(kappa, initial=1.0)))
        if kappas[-1] > SATURATED and not record.across_outputs:
            entries[i] = (kappa > SATURATED, kappa)
        reach, what = float(np.max(np.abs(x), initial=0.0)), "its input"
        if layer.kind in INNER:  # gates and softmax inside: their κ reaches the layer's own parameters
            found = torch_stack.inner_preactivations(layer, x, p.params)
            kappas[-1] = max([float(np.max(ACTIVATIONS[name].output_form_condition(z), initial=1.0))
                              for name, z in found], default=1.0)
            reach = max([float(np.max(np.abs(z), initial=0.0)) for _, z in found], default=0.0)
            what = "a score inside it" if layer.kind == "attention" else "a gate's input inside it"
        inner.append(kappas[-1] if layer.kind in INNER else 1.0)
        if kappas[-1] > max(SATURATED, loss_kappa, *kappas[:-1]):
            where = (f"{layer} ({layer.activation or layer.kind}) is saturated: {what} reaches "
                     f"{reach:.3g}, where its derivative underflows")
    paths: Params = {}
    if entries and sum(int(mask.sum()) for mask, _ in entries.values()) <= PATH_PASSES:
        paths = saturated_paths_traced(problem, torch_stack, {i: np.where(mask, kappa, 0.0)
                                                       for i, (mask, kappa) in entries.items()})
        for i, (mask, kappa) in entries.items():  # the layer's other units still scale |g|
            kappas[i] = float(np.max(kappa, where=~mask, initial=1.0))
    after = [max(kappas[i + 1:], default=1.0) for i in range(len(kappas))]
    position = {layer.name: i for i, (layer, _) in enumerate(inputs)}
    per_key = {name: max(loss_kappa, after[position[name.partition(".")[0]]],
                         inner[position[name.partition(".")[0]]]) for name in p.params}
    if not p.stack.tokens:
        per_key["x"] = max(loss_kappa, *kappas)
    return per_key | {name: 1.0 for name in p.buffers}, where, paths


def saturated_paths_traced(problem, torch_stack, entries: dict[int, np.ndarray]) -> Params:
    """P per gradient key: how far the truth's σ′, taken from a saturated unit's rounded output,
    can move it (``bpcheck.mlp.allowances.saturated_paths_bound`` works the bound out; the same
    holds here, traced exactly rather than bounded through S).

    σ′ from σ rounded by u_64 is off by at most b·min(u_64, 4/κ) (b the record's derivative
    bound, κ its κ_out, 4 = OUTPUT_FORM_LIMIT), so a saturated entry u of an activation layer's
    input z puts at most b·min(u_64, 4/κ_u)·|∂L/∂a_u| into δ_u = ∂L/∂z_u, and that error
    reaches a gradient g only through ∂z_u/∂θ, exactly:

        |error(g)| ≤ Σ_u b·min(u_64, 4/κ_u)·|∂L/∂a_u|·|∂z_u/∂θ| = P,

    one backward pass of torch's float64 graph per saturated entry (``entries``: forward
    position of the activation layer → κ where its input is saturated, else 0), nothing through
    the other units. P is 0 for what no saturated unit feeds: the layers after it."""
    import torch

    p, u = problem.in_float64(), unit_roundoff("float64")
    order = list(walk(p.stack.layers))
    leaves = {name: torch.tensor(np.asarray(v, np.float64), requires_grad=True)
              for name, v in (p.params | torch_stack.differentiable(p.stack, p.x)).items()}
    data, target, masks = torch_stack._inputs(p.stack, p.x, p.y, p.masks)
    seen, ins, outs = iter(range(len(order))), {}, {}

    def visit(layers, a):
        for layer in layers:
            i = next(seen)
            ins[i] = a
            a = (a + visit(layer.body, a) if layer.kind == "res"
                 else torch_stack.layer_output(layer, a, leaves, masks))
            outs[i] = a
        return a

    loss = torch_stack._loss(p.stack, visit(p.stack.layers, leaves.get("x", data)), target, masks)
    keys = [i for i in entries if ins[i].requires_grad]
    found = torch.autograd.grad(loss, [outs[i] for i in keys], retain_graph=True)
    paths = {name: np.zeros(tuple(leaf.shape)) for name, leaf in leaves.items()}
    for i, upstream in zip(keys, found, strict=True):
        bound = ACTIVATIONS[parse_activation(order[i].activation)[0]].derivative_bound
        kappa = entries[i].reshape(-1)
        for flat in np.flatnonzero(kappa):
            one = torch.zeros(ins[i].numel(), dtype=torch.float64)
            one[flat] = 1.0
            reach = torch.autograd.grad(ins[i], list(leaves.values()), one.reshape(ins[i].shape),
                                        retain_graph=True, allow_unused=True)
            carried = bound * min(u, OUTPUT_FORM_LIMIT / kappa[flat]) * abs(float(upstream.reshape(-1)[flat]))
            for name, g in zip(leaves, reach, strict=True):
                if g is not None:
                    paths[name] += carried * np.abs(g.numpy())
    return paths


def lost(truth: np.ndarray, float32: np.ndarray) -> np.ndarray:
    """Where torch's float32 answer is off by FLOAT32_LOST of the entry or more, or not finite:
    there its float32 error no longer bounds its float64 one."""
    error = np.abs(float32 - truth)
    return ~np.isfinite(error) | ((truth != 0) & (error >= FLOAT32_LOST * np.abs(truth)))


def lost_in_float32(truth: Params, opaque: Params | None) -> list[str]:
    """The gradients (of those ``opaque`` holds) some entry of which float32 lost entirely."""
    return [name for name in (opaque or {}) if np.any(lost(truth[name], opaque[name]))]


def measure(problem, torch_stack, truth: Params, others: list[Params], same_dtype: Params | None,
            output_form: dict[str, float] | None = None, opaque: Params | None = None,
            paths: Params | None = None) -> tuple[Params, Params, float]:
    """(rule allowance, witness allowance, floor) per entry of ``truth``: torch's float64
    gradients (parameters and ``x``) and running statistics after the step; ``others``: more
    float64 answers (jax's); ``same_dtype``: torch's computed in the problem's float32 (None in
    float64); ``opaque``: torch's float32 answer for the gradients whose backward path runs
    through a user's layer (see the module docstring)."""
    p, dtype = problem.in_float64(), problem.stack.dtype
    kappa = {name: 1.0 for name in truth} | (output_form or {})

    def spread(rho: float) -> Params:
        reruns = torch_stack.perturbed_gradients(p.stack, p.params, p.x, p.y, p.masks, rho, SENSITIVITY_RUNS,
                                                 buffers=p.buffers)
        return {name: np.max([np.abs(run[name] - truth[name]) for run in reruns], axis=0) for name in truth}

    spreads = {d: (rerun_perturbation(d), spread(rerun_perturbation(d))) for d in {dtype, "float64"}}

    def sens(computed_in: str, name: str, *samples: np.ndarray) -> np.ndarray:
        rho, delta = spreads[computed_in]
        return sensitivity(computed_in, delta[name], rho, truth[name], kappa[name], *samples,
                           saturated=(paths or {}).get(name, 0.0))

    # opaque: torch's answer in float32 where a user's layer hides its insides from the reruns
    # and from κ_out (a saturating tanh inside it): its float32 error, scaled by u_64/u_32, is
    # the float64 rounding that computing the same thing another way may show
    ratio, opaque = unit_roundoff("float64") / unit_roundoff("float32"), opaque or {}
    hidden = {name: [np.where(lost(truth[name], opaque[name]), 0.0,  # torch and jax may round apart too
                              ratio * np.abs(opaque[name] - truth[name]))] if name in opaque else []
              for name in truth}
    samples = {name: [np.abs(other[name] - truth[name]) for other in others]
               + ([np.abs(same_dtype[name] - truth[name])] if same_dtype is not None else [])
               + hidden[name] for name in truth}
    steps = stack_rounding_steps(p.stack, p.n_samples)
    floor = underflow_floor(steps, dtype)
    rule = {name: spread_allowance(sens(dtype, name, *samples[name]), floor) for name in truth}
    witness = {name: spread_allowance(sens("float64", name, *hidden[name]), underflow_floor(steps, "float64"))
               for name in truth}
    # where an output rounded to its limit (tanh to ±1), a derivative taken from it (1 − tanh²)
    # is exactly 0 and the rule's e^{−2|z|} need not be: such exact zeros are not judged
    limit = {name for name in truth if kappa[name] * unit_roundoff("float64") >= 1}
    rule, witness = ({name: np.where((truth[name] == 0) & (name in limit), np.inf, e)
                      for name, e in allowed.items()} for allowed in (rule, witness))
    for name in lost_in_float32(truth, opaque):  # κ ≥ 1/u_32 there: no bound is known
        unknown = lost(truth[name], opaque[name])
        rule[name], witness[name] = (np.where(unknown, np.inf, e[name]) for e in (rule, witness))
    return rule, witness, floor
