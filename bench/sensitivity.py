"""How sharp are the verdicts? Structural bugs injected into random family members, per dtype.

Each bug is a small named change to the derived rule: the mutation gate's catalogue
(``bpcheck.mlp.mutants``) plus bugs that fire only on some shapes (the penalty missing on one layer,
a bias gradient summed over the wrong axis when N = 1, σ′ skipped when a hidden layer has one
unit). For every bug and dtype, random problems of the kind it is defined on are drawn (NumPy
generator, seed 0; widths 1–8, batch 1–8, weights from the seed program's initialiser, η in
[1e−3, 1]) and the bug is compared exactly as ``bpcheck`` compares a rule (torch, jax and
finite differences by projection; the last column counts the draws whose projected rows alone
differ).

Printed per dtype: among draws where the bug changes some parameter's gradient by at least
1e−3 (float32) or 1e−6 (float64) of that gradient's largest entry, how many are caught
(DIFFERS), inconclusive, or missed (agrees); and, over the same draws, the allowance the
derived rule gets divided by the derived rule's actual error (median and 90th percentile):
how much larger than a correct rule's real rounding the allowance is. Run with ``make bench``.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable

import numpy as np
from rich.console import Console
from tables import show

from bpcheck.core.datasets import random_data
from bpcheck.core.verdicts import DIFFERS, INCONCLUSIVE
from bpcheck.mlp.compare import ask_witnesses, compare_rule
from bpcheck.mlp.mutants import MUTANTS, Knobs, mutated_directions
from bpcheck.mlp.problem import Problem
from manual import network
from manual.initialisers import truncated_normal
from manual.rules import RULES, UpdateRule
from manual.spec import ACTIVATIONS, LOSSES, Spec

DRAWS = 60  # random problems per bug and dtype
#: A bug must change the gradient by this much (relative to its largest entry) to count.
DETECTABLE = {"float32": 1e-3, "float64": 1e-6}
Directions = Callable[[Spec, dict, np.ndarray, np.ndarray, float], dict]


def only_when(condition: Callable[[Spec, int], bool], knobs: Knobs) -> Directions:
    """The derived rule, with ``knobs`` turned only on problems where ``condition(spec, N)``."""
    def directions(spec, params, X, Y, lr):
        n = X.shape[1] if spec.layout == "cols" else X.shape[0]
        return mutated_directions(knobs if condition(spec, n) else Knobs(), spec, params, X, Y, lr)
    return directions


def bias_summed_over_units_when_single(spec, params, X, Y, lr):
    """With one sample, ∂L/∂b_k = δ_k is replaced by Σ_units δ_k on every unit (a sum taken
    over the wrong axis, which only shows when the batch axis has length 1)."""
    grads = network.gradients(spec, params, X, Y)
    n = X.shape[1] if spec.layout == "cols" else X.shape[0]
    if n == 1:
        grads = {k: np.full_like(g, g.sum()) if k.startswith("b") else g for k, g in grads.items()}
    return grads


def penalty_missing_on_first_layer(spec, params, X, Y, lr):
    """λW_1 left out of ∂L/∂W_1 (the other layers keep their penalty)."""
    grads = network.gradients(spec, params, X, Y)
    grads["W1"] = grads["W1"].copy()
    grads["W1"][:, : spec.sizes[0]] -= spec.l2 * params["W1"][:, : spec.sizes[0]]
    return grads


#: name → (directions, options for the random problems)
BUGS: dict[str, tuple[Directions, dict]] = {
    **{name: (mutant.rule().directions, mutant.options) for name, mutant in MUTANTS.items()},
    "l2-missing-on-one-layer": (penalty_missing_on_first_layer, {"l2": 0.25, "depth": 3}),
    "bias-sum-wrong-axis-at-N=1": (bias_summed_over_units_when_single, {"bias": "vector", "n": 1}),
    "hidden-derivative-skipped-at-width-1": (
        only_when(lambda spec, n: spec.sizes[1] == 1, Knobs(hidden_factor_missing=True)),
        {"depth": 3, "hidden_width": 1}),
}


def random_problem(rng: np.random.Generator, dtype: str, options: dict) -> Problem:
    """A random family member with the given options (those of ``bpcheck.mlp.strategies.specs``)."""
    depth = options.get("depth") or int(rng.integers(2, 5))
    loss = options.get("loss") or str(rng.choice(list(LOSSES)))
    hidden = [name for name, record in ACTIVATIONS.items() if not record.output_only]
    names = [str(rng.choice(hidden)) for _ in range(depth - 1)]
    names.append(str(rng.choice(list(LOSSES[loss].probability_outputs or ACTIVATIONS))))
    sizes = [options.get("width") or int(rng.integers(1, 9)) for _ in range(depth + 1)]
    if "hidden_width" in options:
        sizes[1] = options["hidden_width"]
    if ACTIVATIONS[names[-1]].across_outputs or LOSSES[loss].across_outputs:  # one output: all zero
        sizes[-1] = max(sizes[-1], 2)
    reduction = options.get("reduction") or str(rng.choice(["sum", "mean"]))
    bias = options.get("bias") or str(rng.choice(["node", "vector"]))
    spec = Spec(tuple(sizes), tuple(names), loss, reduction, bias, str(rng.choice(["cols", "rows"])),
                dtype, options.get("l2", float(rng.choice([0.0, 0.25]))))
    X, Y = random_data(spec, options.get("n") or int(rng.integers(1, 9)), rng)
    params = {k: v.astype(dtype) for k, v in truncated_normal(spec, rng).items()}
    return Problem(spec, params, X, Y, float(10 ** rng.uniform(-3, 0)))


def change(bug: dict, derived: dict) -> float:
    """max over parameters of ‖bug − derived‖_∞ / ‖derived‖_∞."""
    return max(float(np.max(np.abs(bug[k].astype(np.float64) - derived[k]))) /
               max(float(np.max(np.abs(derived[k]))), np.finfo(np.float64).tiny) for k in derived)


def measure(dtype: str) -> tuple[dict[str, Counter], list[float]]:
    rng = np.random.default_rng(0)
    outcomes: dict[str, Counter] = {}
    ratios: list[float] = []
    derived = RULES["derived"]
    for name, (directions, options) in BUGS.items():
        counts = outcomes[name] = Counter()
        rule = UpdateRule(name, name, True, directions, lambda s, p, X, Y, lr, d=directions: {
            k: p[k] - p[k].dtype.type(lr) * g for k, g in d(s, p, X, Y, lr).items()})
        for _ in range(DRAWS):
            problem = random_problem(rng, dtype, options)
            args = (problem.spec, problem.params, problem.X, problem.Y, problem.lr)
            if change(rule.directions(*args), derived.directions(*args)) < DETECTABLE[dtype]:
                counts["undetectable"] += 1
                continue
            truth = ask_witnesses(problem)  # torch, jax and finite differences by projection
            report = compare_rule(rule, problem, truth)
            counts[{DIFFERS: "caught", INCONCLUSIVE: "inconclusive"}.get(report.verdict, "missed")] += 1
            counts["by projection"] += any(row.differs for row in report.rows if row.directions)
            exact, found = truth.gradients["torch"], derived.directions(*args)
            for key, allowance in truth.allowance.items():
                error = float(np.max(np.abs(found[key].astype(np.float64) - exact[key])))
                if error > 0:
                    ratios.append(float(np.max(allowance)) / error)
    return outcomes, ratios


def main() -> None:
    console = Console(width=130)
    summary = []
    for dtype in ("float32", "float64"):
        outcomes, ratios = measure(dtype)
        show("sensitivity-detail", f"{dtype}: per bug (≥ {DETECTABLE[dtype]:g} relative change counted)",
             ["bug", "caught", "inconclusive", "missed", "undetectable", "by projection alone"],
             [[name, *(str(counts[k]) for k in ("caught", "inconclusive", "missed", "undetectable",
                                                "by projection"))]
              for name, counts in outcomes.items()], console, append=dtype != "float32")
        total = sum(outcomes.values(), Counter())
        counted = total["caught"] + total["inconclusive"] + total["missed"]
        p90 = float(np.percentile(ratios, 90))
        summary.append([dtype, f"{len(BUGS)} × {DRAWS}", str(counted), str(total["caught"]),
                        str(total["inconclusive"]), str(total["missed"]),
                        f"{100 * total['caught'] / counted:.1f} %",
                        f"{100 * total['by projection'] / counted:.1f} %", f"{statistics.median(ratios):.1f}",
                        f"{p90:.1f}"])
    show("sensitivity", "Catch rate of injected bugs (torch, jax and finite differences by projection), "
         "and allowance ÷ a correct rule's error",
         ["dtype", "bugs × draws", "counted", "caught", "inconclusive", "missed", "catch rate",
          "by projection alone", "allowance/error median", "p90"], summary, console)


if __name__ == "__main__":
    main()
