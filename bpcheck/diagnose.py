r"""Why a rule disagrees: a generic panel of hypotheses, each an exact gradient of a nearby model.

Every hypothesis is a variant of the torch witness — the same autograd network with one named
thing changed in its *backward* pass or in its loss — so a hypothesis never looks at the rule
under study or at its name. For each parameter where the rule's direction D differs from the
exact gradient, the panel tries every single hypothesis, then every pair, each also with a
fitted constant factor c = ⟨D, C⟩/⟨C, C⟩; a hypothesis *explains* the parameter when
|D − c·C| stays within the same per-entry allowance the comparison uses. The simplest
explanation wins — complexity is the number of hypotheses plus the factor's cost: none, a
named factor (``named_factors``: a sign flip, N, 1/N, η, …), or, as a last resort, any fitted
one — and every explanation exactly as simple is listed beside it: "σ′ of the output layer
missing" and "the gradient of binary cross-entropy instead" can be the same statement. The
residual max|D − c·C| / max|D| says how much it leaves.

Panel: the exact gradient of another registered loss (or without the penalty, or with the
penalty on biases too — or, where the spec's penalty covers them, left off them); parameters
already changed earlier in the same update (each error sent back through the weights above as
the rule itself has already updated them); an activation-derivative factor missing, applied
twice, or evaluated at the layer's output, at a named layer; the error sent back through W
instead of Wᵀ; the bias node's column taken as W's first instead of its last; and, on top of
any of these, a constant rescaling (a sign flip is c = −1, a missing 1/N is c = N).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from bpcheck.allowances import SENSITIVITY_WITNESS
from bpcheck.compare import Problem, ask_witnesses
from manual.spec import ACTIVATIONS, LOSSES, Params, Spec, parse_activation, target_kind
from reference import torch_ref


@dataclass(frozen=True)
class Variant:
    """One hypothesis, or a combination: what differs from the exact backward pass."""

    loss: str | None = None  # the exact gradient of this loss instead
    no_penalty: bool = False
    bias_penalty: bool | None = None  # the penalty on biases or not, overriding the spec's l2_biases
    penalty_scale: float = 1.0  # the penalty's gradient times this (2: λ/2‖W‖² read as λ‖W‖²)
    unit_targets: bool = False  # a softmax loss's output error softmax(z) − t, as if Σt = 1
    stale: bool = False
    factor: tuple[tuple[int, str], ...] = ()  # (layer, "missing" | "extra" | "at_output")
    transposed: bool = False
    bias_column_first: bool = False
    names: tuple[str, ...] = field(default=(), compare=False)

    def __add__(self, other: Variant) -> Variant:
        merged = {key: getattr(self, key) or getattr(other, key)
                  for key in ("loss", "no_penalty", "stale", "transposed", "bias_column_first",
                              "unit_targets")}
        bias_penalty = other.bias_penalty if self.bias_penalty is None else self.bias_penalty
        scale = other.penalty_scale if self.penalty_scale == 1.0 else self.penalty_scale
        return Variant(**merged, bias_penalty=bias_penalty, penalty_scale=scale,
                       factor=self.factor + other.factor,
                       names=self.names + other.names)


class _Activation(torch.autograd.Function):
    """a = σ(z) forward; backward: σ's vector–Jacobian product, or the named variant of it."""

    @staticmethod
    def forward(ctx, z, name, mode):
        ctx.save_for_backward(z)
        ctx.name, ctx.mode = name, mode
        return torch_ref.activation(name)(z)

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        f = torch_ref.activation(ctx.name)

        def vjp(at, v):
            with torch.enable_grad():
                x = at.detach().requires_grad_(True)
                return torch.autograd.grad(f(x), x, v)[0]

        result = {"missing": lambda: g, "extra": lambda: vjp(z, vjp(z, g)),
                  "at_output": lambda: vjp(f(z), g), "exact": lambda: vjp(z, g)}[ctx.mode]()
        return result, None, None


class _UnitTargets(torch.autograd.Function):
    """ℓ_n of a softmax loss forward; backward: softmax(z) − t, right only where Σ_c t_c = 1
    (the exact one is softmax(z)·Σ_c t_c − t)."""

    @staticmethod
    def forward(ctx, z, y, name):
        ctx.save_for_backward(z, y)
        return torch_ref.LOSSES[name](z, y)

    @staticmethod
    def backward(ctx, g):
        z, y = ctx.saved_tensors
        return g[:, None] * (torch.softmax(z, dim=-1) - y), None, None


class _Linear(torch.autograd.Function):
    """z = a Wᵀ (+ b) forward; backward sends the error through ``W_back`` instead of W."""

    @staticmethod
    def forward(ctx, a, W, W_back, b):
        ctx.save_for_backward(a, W_back)
        ctx.has_bias = b is not None
        z = a @ W.T
        return z + b if b is not None else z

    @staticmethod
    def backward(ctx, g):
        a, W_back = ctx.saved_tensors
        return g @ W_back, g.T @ a, None, g.sum(0) if ctx.has_bias else None


def _back_weights(spec: Spec, W: torch.Tensor, updated: torch.Tensor | None, v: Variant) -> torch.Tensor:
    W = updated if updated is not None else W
    if v.transposed and W.shape[0] == W.shape[1]:
        return W.T
    if v.bias_column_first and spec.bias == "node":
        return torch.cat([W[:, 1:], W[:, :1]], dim=1)
    return W


def _variant_loss(spec: Spec, leaves: dict, x, y, v: Variant, updated: dict):
    a = x
    modes = dict(v.factor)
    for k, name in enumerate(spec.activations, start=1):
        if spec.bias == "node":
            a = F.pad(a, (0, 1), value=1.0)
        W = leaves[f"W{k}"]
        a = _Linear.apply(a, W, _back_weights(spec, W.detach(), updated.get(k), v), leaves.get(f"b{k}"))
        a = _Activation.apply(a, name, modes.get(k, "exact"))
    if v.unit_targets:
        per_sample = _UnitTargets.apply(a, y, spec.loss)
    else:
        per_sample = torch_ref.LOSSES[v.loss or spec.loss](a, y)
    total = per_sample.mean() if spec.reduction == "mean" else per_sample.sum()
    if spec.l2 and not v.no_penalty:
        inputs, l2 = spec.sizes[:-1], spec.l2 * v.penalty_scale
        total = total + 0.5 * l2 * sum(leaves[f"W{k}"][:, : inputs[k - 1]].square().sum()
                                            for k in range(1, spec.depth + 1))
        on_biases = spec.l2_biases if v.bias_penalty is None else v.bias_penalty
        if on_biases:
            total = total + 0.5 * l2 * sum(
                (leaves[f"b{k}"].square().sum() if spec.bias == "vector"
                 else leaves[f"W{k}"][:, -1].square().sum()) for k in range(1, spec.depth + 1))
    return total


def variant_gradients(problem: Problem, v: Variant, directions: Params) -> Params:
    """The gradient under hypothesis ``v``. With ``stale``, every error is sent back through the
    weights above as the rule itself has already updated them: W_k − η·D_k, D its directions."""
    p = problem.in_float64()
    x, y = torch_ref.samples_as_rows(p.spec, p.X), torch_ref.samples_as_rows(p.spec, p.Y)
    updated = {k: torch.tensor(p.params[f"W{k}"] - p.lr * np.asarray(directions[f"W{k}"], np.float64))
               for k in range(2, p.spec.depth + 1)} if v.stale else {}
    leaves = torch_ref.as_leaves(p.params)
    total = _variant_loss(p.spec, leaves, x, y, v, updated)
    found = torch.autograd.grad(total, list(leaves.values()))
    return {name: g.numpy() for name, g in zip(leaves, found, strict=True)}


def panel(spec: Spec, probabilities: bool = False) -> list[Variant]:
    """Every single hypothesis that can change something on this spec; ``probabilities``: the
    targets are in [0, 1], so a loss taking probabilities is a candidate too."""
    kind = target_kind(spec.loss)
    kinds = {kind} | ({"values"} if kind == "probabilities" else set())
    if probabilities and kind == "values":
        kinds.add("probabilities")
    out = parse_activation(spec.activations[-1])[0]
    hypotheses = []
    if spec.l2:
        # the bias convention first: where it and no penalty both explain a bias vector's
        # gradient (the spec's penalty covers biases), it is the more specific of the two
        flipped = "the penalty left off the biases" if spec.l2_biases else "the penalty applied to biases too"
        hypotheses += [Variant(bias_penalty=not spec.l2_biases, names=(flipped,)),
                       Variant(no_penalty=True, names=("the penalty's gradient left out",)),
                       Variant(penalty_scale=2.0, names=("the penalty's gradient doubled (λ/2‖W‖² "
                                                         "differentiated as λ‖W‖²)",))]
    if LOSSES[spec.loss].across_outputs and kind == "probabilities":
        hypotheses.append(Variant(unit_targets=True, names=(
            "the output error taken as softmax(z) − T, as if every target summed to one",)))
    if spec.depth > 1:
        hypotheses.append(Variant(stale=True, names=("the error sent back through weights already "
                                                     "updated by this same step",)))
        if len(set(spec.sizes[1:-1])) <= 1 and spec.bias == "vector" and spec.sizes[1] == spec.sizes[-1]:
            hypotheses.append(Variant(transposed=True, names=("error sent back through W, not Wᵀ",)))
        if spec.bias == "node":
            hypotheses.append(Variant(bias_column_first=True,
                                      names=("the bias node's column taken as W's first, not last",)))
    for k, name in enumerate(spec.activations, start=1):
        if ACTIVATIONS[parse_activation(name)[0]].constant_derivative:
            continue
        for mode, words in (("missing", "missing"), ("extra", "applied twice"),
                            ("at_output", "evaluated at the layer's output a, not z")):
            hypotheses.append(Variant(factor=((k, mode),),
                                      names=(f"σ′ of layer {k} ({name}) {words}",)))
    # another loss last: where it explains as simply as a slip in the backward pass, the slip
    # is what hand-written code more often did, and both are listed
    return hypotheses + [Variant(loss=loss, names=(f"the exact gradient of the {loss} loss",))
                         for loss, record in LOSSES.items() if loss != spec.loss and record.targets in kinds
                         and out in (record.probability_outputs or (out,))]


@dataclass
class Explanation:
    parameter: str
    hypotheses: tuple[str, ...]  # empty: nothing in the panel explains it (or the factor alone)
    factor: float
    residual: float  # max|D − c·C| / max|D|
    factor_words: str = ""  # the factor named ("sign flipped: …"), "" for 1 or an unnamed one
    #: other explanations exactly as simple: (hypotheses, factor, factor_words) each
    alternatives: tuple[tuple[tuple[str, ...], float, str], ...] = ()


def named_factors(n: int, lr: float) -> list[tuple[float, str]]:
    """The constant factors hand-written rules are commonly off by, named."""
    return [(-1.0, "sign flipped: gradient ascent (×−1)"),
            (float(n), f"a sum where the model averages (×N, N = {n})"),
            (1.0 / n, f"a mean where the model sums (×1/N, N = {n})"),
            (lr, f"η folded into the gradient (×η, η = {lr:g})"),
            (1.0 / lr, f"η left out of the step (×1/η, η = {lr:g})"),
            (-lr, f"η folded in and the sign flipped (×−η, η = {lr:g})"),
            (2.0, "×2 (a ½ lost)"), (0.5, "×½ (a 2 lost)"),
            (-float(n), "the sign flipped and a sum where the model averages (×−N)"),
            (-1.0 / n, "the sign flipped and a mean where the model sums (×−1/N)")]


#: What a factor adds to an explanation's complexity: none, a named one, any fitted one (last
#: resort: one entry can always be fitted, so it must not outrank a named hypothesis).
FACTOR_COST = {"none": 0, "named": 1, "fitted": 3}


def _fit(D: np.ndarray, C: np.ndarray) -> float:
    denominator = float(np.sum(C * C))
    return float(np.sum(D * C)) / denominator if denominator else 1.0


def _factors(D: np.ndarray, C: np.ndarray, named: list[tuple[float, str]]):
    """(cost, c, words) to try for D ≈ c·C: 1, the named factor nearest the fit, the fit."""
    yield FACTOR_COST["none"], 1.0, ""
    fitted = _fit(D, C)
    for value, words in named:
        if np.isclose(fitted, value, rtol=1e-6, atol=0):
            yield FACTOR_COST["named"], value, words
    if fitted != 1.0:
        yield FACTOR_COST["fitted"], fitted, ""


def diagnose(directions: Params, problem: Problem, max_combination: int = 2,
             also: Sequence[tuple[Params, Problem]] = ()) -> list[Explanation]:
    """For each parameter where ``directions`` differs from the exact gradient, the simplest
    explanations: complexity = hypotheses + the factor's cost (FACTOR_COST); every explanation
    of the least complexity is kept (the first as the answer, the others as alternatives).
    An explanation must also hold, with the same factor, on each (directions, problem) of
    ``also`` — the same rule on other values of the same network and batch size."""
    truth = ask_witnesses(problem, finite_differences=False)
    exact, spec = truth.gradients[SENSITIVITY_WITNESS], problem.spec
    named = named_factors(problem.n_samples, problem.lr)
    others = [(_as_float64(more), other, ask_witnesses(other, finite_differences=False).allowance)
              for more, other in also]

    def allowed(name: str, c: float) -> np.ndarray:
        return truth.allowance[name] * max(1.0, abs(c))

    elsewhere_cache: dict[Variant, list[Params]] = {}

    def elsewhere(variant: Variant, name: str, c: float) -> tuple[bool, float]:
        """Whether D ≈ c·C holds on every other draw too, and its worst relative residual there."""
        if variant not in elsewhere_cache:
            elsewhere_cache[variant] = [variant_gradients(other, variant, more) for more, other, _ in others]
        holds, worst = True, 0.0
        for (more, _, allowance), C in zip(others, elsewhere_cache[variant], strict=True):
            residual = np.abs(more[name] - c * C[name])
            holds &= bool(np.all(residual <= allowance[name] * max(1.0, abs(c))))
            size = float(np.abs(more[name]).max(initial=0)) or 1.0
            worst = max(worst, float(residual.max(initial=0)) / size)
        return holds, worst

    D = _as_float64(directions)
    wrong = [name for name in D if np.any(np.abs(D[name] - exact[name]) > allowed(name, 1.0))]
    in_unit = all(np.issubdtype(p.Y.dtype, np.floating) and np.all((p.Y >= 0) & (p.Y <= 1))
                  for p in [problem, *(other for _, other in also)])
    singles = panel(spec, in_unit)
    candidates = [Variant()] + singles + [
        sum(combo[1:], combo[0]) for r in range(2, max_combination + 1)
        for combo in itertools.combinations(singles, r)]
    found: dict[str, list[tuple[int, Explanation]]] = {name: [] for name in wrong}
    best: dict[str, Explanation] = {name: Explanation(name, (), 1.0, np.inf) for name in wrong}
    for variant in candidates:
        if wrong and all(found[name] and found[name][0][0] < len(variant.names) for name in wrong):
            break
        C = variant_gradients(problem, variant, D)
        for name in wrong:
            scale = float(np.abs(D[name]).max(initial=0)) or 1.0
            for cost, c, words in _factors(D[name], C[name], named):
                residual_abs = np.abs(D[name] - c * C[name])
                residual = float(residual_abs.max(initial=0)) / scale
                holds = bool(np.all(residual_abs <= allowed(name, c)))
                if holds and others:
                    holds, worst = elsewhere(variant, name, c)
                    residual = max(residual, worst)
                explanation = Explanation(name, variant.names or ("the exact gradient",), c, residual, words)
                if holds:
                    found[name].append((len(variant.names) + cost, explanation))
                    found[name].sort(key=lambda pair: pair[0])
                    break
                if explanation.residual < best[name].residual:
                    best[name] = replace(explanation, hypotheses=(), factor_words="")
    return [_simplest(found[name]) if found[name] else best[name] for name in wrong]


def _as_float64(directions: Params) -> Params:
    return {name: np.asarray(value, np.float64) for name, value in directions.items()}


def _simplest(explained: list[tuple[int, Explanation]]) -> Explanation:
    """The first of the least complex explanations, the others as its alternatives."""
    least = explained[0][0]
    tied = [e for complexity, e in explained if complexity == least]
    return replace(tied[0], alternatives=tuple((e.hypotheses, e.factor, e.factor_words) for e in tied[1:]))
