r"""The mutation gate: deliberately wrong rules, each one small named change to the derived rule.

Every mutant recomputes the δ recursion of ``manual.network`` with one knob turned (the
formulas are in that module's docstring), so it differs from the correct rule in exactly the
way its name says. ``bpcheck mutants`` and the tests hunt each with Hypothesis against the
torch and jax witnesses; a mutant that no random network exposes would mean the suite cannot
see that bug. Mutants live here, never in ``manual.rules.RULES``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from bpcheck.core.hunt import Hunt, hunted
from manual import vocabulary
from manual.activations import activation
from manual.losses import LOSSES, one_hot, reduction_scale
from manual.network import forward, to_columns, weights
from manual.rules import RULES, UpdateRule
from manual.spec import Params, Spec, check_problem, parse_activation


@dataclass(frozen=True)
class Knobs:
    """What a mutant changes; the defaults are the derived rule."""

    output_factor: str = "normal"  # "missing" | "extra" | "at_output": σ_L′ dropped, twice, at a_L
    hidden_factor_missing: bool = False  # σ′ dropped at the first hidden layer
    transpose_backprop: bool = False  # W_{k+1} δ instead of W_{k+1}ᵀ δ (square layers)
    bias_column_first: bool = False  # the bias node's column taken as the first, not the last
    bias_averaged: bool = False  # ∂L/∂b = mean of δ over samples instead of the sum
    scale: str = "normal"  # "one": ignore 1/N of mean; "one_over_n": apply 1/N to a sum
    stale: bool = False  # δ sent back through W_{k+1} after its own update
    residual_loss: bool = False  # ∂ℓ/∂a = a − y whatever the loss
    #: "missing": no penalty term at all (λW, nor λ·bias where the spec's penalty covers biases);
    #: "on_bias": the bias term the other way round from the spec's ``l2_biases`` — λ applied to
    #: the bias parameters too, or, where the spec covers them, left off them
    l2: str = "normal"
    factor: float = 1.0  # every direction times this (−1: a sign flip; 2: a lost ½)


def mutated_directions(knobs: Knobs, spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray,
                       lr: float) -> Params:
    """The derived rule's ∂L/∂θ (see ``manual.network``) with the knobs applied."""
    params, X, Y = check_problem(spec, params, X, Y)
    caches = forward(spec, params, to_columns(spec, X))
    Y_cols, a_out = to_columns(spec, Y), caches[-1].a
    n = Y_cols.shape[-1]
    scale = {"normal": reduction_scale(n, spec.reduction), "one": 1.0, "one_over_n": 1.0 / n}[knobs.scale]
    if knobs.residual_loss:
        target = one_hot(Y_cols, spec.sizes[-1], a_out.dtype) if Y_cols.ndim == 1 else Y_cols
        upstream = scale * (a_out - target)
    else:
        upstream = scale * LOSSES[spec.loss].gradient(a_out, Y_cols)
    grads, current = {}, dict(params)
    bias_penalty = bool(spec.l2) and knobs.l2 != "missing" and spec.l2_biases != (knobs.l2 == "on_bias")
    for k in range(spec.depth, 0, -1):
        cache, act = caches[k - 1], activation(spec.activations[k - 1])
        if k == spec.depth and knobs.output_factor == "missing":
            delta = upstream
        elif k == spec.depth and knobs.output_factor == "extra":
            delta = act.vjp(cache.z, cache.a, act.vjp(cache.z, cache.a, upstream))
        elif k == spec.depth and knobs.output_factor == "at_output":
            delta = act.vjp(cache.a, act.value(cache.a), upstream)
        elif k == 1 and knobs.hidden_factor_missing and spec.depth > 1:
            delta = upstream
        else:
            delta = act.vjp(cache.z, cache.a, upstream)
        grads[f"W{k}"] = delta @ cache.inputs.T
        if spec.l2 and knobs.l2 != "missing":
            grads[f"W{k}"][:, : spec.sizes[k - 1]] += spec.l2 * weights(spec, params, k)
            if bias_penalty and spec.bias == "node":
                grads[f"W{k}"][:, -1] += spec.l2 * params[f"W{k}"][:, -1]
        if spec.bias == "vector":
            grads[f"b{k}"] = delta.mean(axis=1) if knobs.bias_averaged else delta.sum(axis=1)
            if bias_penalty:
                grads[f"b{k}"] = grads[f"b{k}"] + spec.l2 * params[f"b{k}"]
        if knobs.stale:
            current[f"W{k}"] = params[f"W{k}"] - lr * grads[f"W{k}"]
        if k > 1:
            width = spec.sizes[k - 1]
            W = current[f"W{k}"]
            block = W[:, 1: width + 1] if knobs.bias_column_first else W[:, :width]
            upstream = (block if knobs.transpose_backprop else block.T) @ delta
    return {name: knobs.factor * grads[name] for name in params}


@dataclass(frozen=True)
class Mutant:
    """A wrong rule, the specs it is defined on, and the strategy options that reach them."""

    name: str
    change: str
    knobs: Knobs
    options: dict = field(default_factory=dict)  # passed to bpcheck.mlp.strategies.specs
    supports: str = "any network"

    def rule(self) -> UpdateRule:
        def directions(spec, params, X, Y, lr):
            return mutated_directions(self.knobs, spec, params, X, Y, lr)

        def both(spec, params, X, Y, lr):
            found = directions(spec, params, X, Y, lr)
            return found, {k: params[k] - params[k].dtype.type(lr) * found[k] for k in found}

        def unsupported(spec: Spec) -> str | None:
            return None if _defined(self, spec) else f"{self.name} needs {self.supports}"

        return UpdateRule(self.name, self.change, False, directions,
                          lambda *args: both(*args)[1], unsupported, both)


def _defined(mutant: Mutant, spec: Spec) -> bool:
    """Whether the change can show at all on this spec (e.g. a bias column needs a bias node)."""
    knobs = mutant.knobs
    out, first = (vocabulary.ACTIVATIONS[parse_activation(name)[0]]
                  for name in (spec.activations[-1], spec.activations[0]))
    checks = {
        "output_factor": not out.constant_derivative and not (knobs.output_factor == "at_output"
                                                              and out.same_derivative_at_output),
        "hidden_factor_missing": spec.depth > 1 and not first.constant_derivative,
        "transpose_backprop": spec.depth > 1 and len(set(spec.sizes)) == 1,
        "bias_column_first": spec.depth > 1 and spec.bias == "node",
        "bias_averaged": spec.bias == "vector",
        "stale": spec.depth > 1,
        "residual_loss": not vocabulary.LOSSES[spec.loss].residual_gradient,
        "l2": spec.l2 > 0,
    }
    defaults = Knobs()
    return all(ok for name, ok in checks.items() if getattr(knobs, name) != getattr(defaults, name))


def _m(name: str, change: str, supports: str = "any network", options: dict | None = None,
       **knobs) -> Mutant:
    return Mutant(name, change, replace(Knobs(), **knobs), options or {}, supports)


DEEP = {"depth": 3}
MUTANTS: dict[str, Mutant] = {m.name: m for m in [
    _m("sign-flip", "every direction negated (gradient ascent)", factor=-1.0),
    _m("lost-half", "½-squared error differentiated without the ½: every direction doubled",
       factor=2.0),
    _m("no-output-derivative", "δ_L = ∂L/∂a_L: the output activation's derivative missing",
       "a non-identity output", {"loss": "half-sse"}, output_factor="missing"),
    _m("extra-output-derivative", "σ_L′ applied twice at the output", "a non-identity output",
       {"loss": "half-sse"}, output_factor="extra"),
    _m("derivative-at-output", "σ_L′ evaluated at a_L = σ(z) instead of z",
       "a smooth non-identity output", {"loss": "half-sse"}, output_factor="at_output"),
    _m("no-hidden-derivative", "σ′ missing at the first hidden layer",
       "a hidden layer", DEEP, hidden_factor_missing=True),
    _m("transposed-backprop", "error sent back through W instead of Wᵀ",
       "square layers", {"width": 3, "bias": "vector", **DEEP}, transpose_backprop=True),
    _m("bias-column-first", "the bias node's column taken as W's first column, not its last",
       "a bias node and a hidden layer", {"bias": "node", **DEEP}, bias_column_first=True),
    _m("bias-averaged", "∂L/∂b averaged over the batch instead of summed",
       "bias vectors", {"bias": "vector"}, bias_averaged=True),
    _m("missing-1/N", "mean reduction differentiated as a sum (1/N missing)",
       "mean reduction", {"reduction": "mean"}, scale="one"),
    _m("extra-1/N", "sum reduction differentiated as a mean (1/N extra)",
       "sum reduction", {"reduction": "sum"}, scale="one_over_n"),
    _m("stale-weights", "δ sent back through W_{k+1} after its update (the seed's ordering)",
       "a hidden layer", DEEP, stale=True),
    _m("residual-loss-derivative", "∂ℓ/∂a = a − y whatever the loss", "a loss other than half-sse",
       {"loss": "bce"}, residual_loss=True),
    _m("missing-l2", "the penalty's λW term missing", "a penalty", {"l2": 0.25}, l2="missing"),
    _m("l2-on-bias", "the penalty applied to the bias parameters too", "a penalty",
       {"l2": 0.25, "l2_biases": False}, l2="on_bias"),
]}


def hunt_mutant(mutant: Mutant, max_examples: int, seed: int = 0,
                finite_differences: bool | str = False) -> Hunt:
    """Hypothesis searches random networks (of the kind the mutant is defined on) for one where
    it disagrees with the witnesses, then shrinks it."""
    from bpcheck.mlp.search import hunt  # Hypothesis loads when a hunt runs, not with the catalogue
    from bpcheck.mlp.strategies import problems, specs

    verdict = hunt(mutant.rule(), problems(specs(max_hidden_layers=3, **mutant.options)),
                   max_examples, seed, finite_differences)
    return hunted(mutant, verdict)


def find_rule(name: str) -> UpdateRule | None:
    """A registered rule or a catalogued mutant, by name (None if neither)."""
    return RULES.get(name) or (MUTANTS[name].rule() if name in MUTANTS else None)
