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
penalty on biases too — or, where the spec's penalty covers them, left off them); an L2 penalty
the spec does not declare (or beyond the one it does) on the weights, the biases or both, its λ
fitted by least squares (a fitted constant: it costs 1, like a named factor); the output error
taken as a − T at the output layer's z (softmax cross-entropy's p − y after, say, a sigmoid); parameters
already changed earlier in the same update (each error sent back through the weights above as
the rule itself has already updated them); an activation-derivative factor missing, applied
twice, or evaluated at the layer's output, at a named layer; the error sent back through W
instead of Wᵀ; the bias node's column taken as W's first instead of its last; and, on top of
any of these, a constant rescaling (a sign flip is c = −1, a missing 1/N is c = N).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from bpcheck.mlp.allowances import SENSITIVITY_WITNESS
from bpcheck.mlp.compare import ask_witnesses, rule_allowance
from bpcheck.mlp.problem import Problem
from bpcheck.mlp.variants import PENALTY_PARTS, Variant, variant_gradients, with_fitted_penalty
from manual.spec import ACTIVATIONS, LOSSES, Params, Spec, parse_activation, target_kind
from manual.vocabulary import PROBABILITY_TARGETS


def panel(spec: Spec, probabilities: bool = False) -> list[Variant]:
    """Every single hypothesis that can change something on this spec; ``probabilities``: the
    targets are in [0, 1], so a loss taking probabilities is a candidate too."""
    kind = target_kind(spec.loss)
    # targets in [0, 1] are values too, and a loss on probabilities takes soft or one-hot ones
    kinds = {kind} | ({"values", "probabilities"} if kind in PROBABILITY_TARGETS else set())
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
    beyond = f" beyond the declared l2 = {spec.l2:g}" if spec.l2 else " the rule does not declare"
    hypotheses += [Variant(penalty_on=part, names=(
        f"an L2 penalty on the {part.replace('both', 'weights and biases')}{beyond}: λ·θ added to "
        "their gradient",)) for part in PENALTY_PARTS]
    if LOSSES[spec.loss].across_outputs and kind == "probabilities":
        hypotheses.append(Variant(unit_targets=True, names=(
            "the output error taken as softmax(z) − T, as if every target summed to one",)))
    if not (ACTIVATIONS[out].constant_derivative or LOSSES[spec.loss].residual_gradient):
        hypotheses.append(Variant(output_minus_targets=True, names=(
            f"the output error taken as a − T, a the {spec.activations[-1]} output (softmax "
            f"cross-entropy's p − y), not the {spec.loss} loss's gradient through {spec.activations[-1]}",)))
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
        if ACTIVATIONS[parse_activation(name)[0]].derivative_from_output is not None:
            hypotheses.append(Variant(factor=((k, "output_form_at_z"),), names=(
                f"σ′ of layer {k} ({name}) written for the output a but given z "
                "(z(1 − z) for σ(1 − σ), 1 − z² for 1 − tanh²)",)))
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
    allowed: float = 0.0  # what rounding allows it, the comparison's max e_i / max|D| (on this draw)


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


def _fitted(problem: Problem, variant: Variant, D: Params) -> Variant | None:
    """A variant with an undeclared penalty, its λ fitted to D and said in its name; None where
    the fit is no penalty (λ ≤ 0)."""
    if not variant.penalty_on:
        return variant
    fitted = with_fitted_penalty(problem, variant, D)
    if not fitted.extra_l2 > 0:
        return None
    return replace(fitted, names=tuple(f"{name} (λ = {fitted.extra_l2:.4g}, fitted)"
                                       if name.startswith("an L2 penalty") else name
                                       for name in variant.names))


def diagnose(directions: Params, problem: Problem, max_combination: int = 2,
             also: Sequence[tuple[Params, Problem]] = (), from_step: bool = False) -> list[Explanation]:
    """For each parameter where ``directions`` differs from the exact gradient, the simplest
    explanations: complexity = hypotheses + the factor's cost (FACTOR_COST); every explanation
    of the least complexity is kept (the first as the answer, the others as alternatives).
    An explanation must also hold, with the same factor, on each (directions, problem) of
    ``also`` — the same rule on other values of the same network and batch size. Each entry
    is allowed what the comparison allows it (``rule_allowance``: with ``from_step``, the
    directions are (θ − θ′)/η and carry θ′'s rounding over η)."""
    truth = ask_witnesses(problem, finite_differences=False)
    exact, spec = truth.gradients[SENSITIVITY_WITNESS], problem.spec
    allowance = rule_allowance(truth, problem, from_step)
    named = named_factors(problem.n_samples, problem.lr)
    others = [(_as_float64(more), other,
               rule_allowance(ask_witnesses(other, finite_differences=False), other, from_step))
              for more, other in also]

    def allowed(name: str, c: float) -> np.ndarray:
        return allowance[name] * max(1.0, abs(c))

    elsewhere_cache: dict[Variant, list[Params]] = {}

    def elsewhere(variant: Variant, names: list[str], c: float) -> tuple[bool, float]:
        """Whether D ≈ c·C holds on every other draw too (for each of ``names``), and the worst
        relative residual there of the first."""
        if variant not in elsewhere_cache:
            elsewhere_cache[variant] = [variant_gradients(other, variant, more) for more, other, _ in others]
        holds, worst = True, 0.0
        for (more, _, allowance), C in zip(others, elsewhere_cache[variant], strict=True):
            for name in names:
                residual = np.abs(more[name] - c * C[name])
                holds &= bool(np.all(residual <= allowance[name] * max(1.0, abs(c))))
            residual = np.abs(more[names[0]] - c * C[names[0]])
            size = float(np.abs(more[names[0]]).max(initial=0)) or 1.0
            gap = float(residual.max(initial=0)) / size
            worst = max(worst, gap if np.isfinite(gap) else np.inf)  # NaN: max() would drop it
        return holds, worst

    D = _as_float64(directions)
    wrong = [name for name in D if np.any(np.abs(D[name] - exact[name]) > allowed(name, 1.0))]
    in_unit = all(np.issubdtype(p.Y.dtype, np.floating) and np.all((p.Y >= 0) & (p.Y <= 1))
                  for p in [problem, *(other for _, other in also)])
    singles = panel(spec, in_unit)
    candidates = [Variant()] + singles + [
        sum(combo[1:], combo[0]) for r in range(2, max_combination + 1)
        for combo in itertools.combinations(singles, r) if sum(bool(v.penalty_on) for v in combo) <= 1]
    found: dict[str, list[tuple[int, Explanation]]] = {name: [] for name in wrong}
    best: dict[str, Explanation] = {name: Explanation(name, (), 1.0, np.inf) for name in wrong}
    for variant in candidates:
        if wrong and all(found[name] and found[name][0][0] < len(variant.names) for name in wrong):
            break
        variant = _fitted(problem, variant, D)
        if variant is None:
            continue
        C = variant_gradients(problem, variant, D)
        for name in wrong:
            scale = float(np.abs(D[name]).max(initial=0)) or 1.0
            for cost, c, words in _factors(D[name], C[name], named):
                residual_abs = np.abs(D[name] - c * C[name])
                residual = float(residual_abs.max(initial=0)) / scale
                # a fitted penalty is said of the whole step (on this part, not on the rest):
                # it must hold on every parameter
                names = [name, *(n for n in D if n != name and variant.penalty_on)]
                holds = all(np.all(np.abs(D[n] - c * C[n]) <= allowed(n, c)) for n in names)
                residual = max([residual, *(_relative_residual(D[n], c * C[n]) for n in names[1:])])
                if holds and others:
                    holds, worst = elsewhere(variant, names, c)
                    residual = max(residual, worst)
                explanation = Explanation(name, variant.names or ("the exact gradient",), c, residual, words,
                                          allowed=float(allowed(name, c).max(initial=0)) / scale)
                if holds:
                    found[name].append((variant.complexity + cost, explanation))
                    found[name].sort(key=lambda pair: pair[0])
                    break
                if explanation.residual < best[name].residual:
                    best[name] = replace(explanation, hypotheses=(), factor_words="")
    return [_simplest(found[name]) if found[name] else best[name] for name in wrong]


def _relative_residual(D: np.ndarray, fitted: np.ndarray) -> float:
    """max|D − fitted| / max|D| (over 1 where D is all zero); not finite: inf."""
    gap = float(np.abs(D - fitted).max(initial=0)) / (float(np.abs(D).max(initial=0)) or 1.0)
    return gap if np.isfinite(gap) else np.inf


def _as_float64(directions: Params) -> Params:
    return {name: np.asarray(value, np.float64) for name, value in directions.items()}


def _simplest(explained: list[tuple[int, Explanation]]) -> Explanation:
    """The first of the least complex explanations, the others as its alternatives."""
    least = explained[0][0]
    tied = [e for complexity, e in explained if complexity == least]
    return replace(tied[0], alternatives=tuple((e.hypotheses, e.factor, e.factor_words) for e in tied[1:]))
