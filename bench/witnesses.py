"""Milliseconds per example for the rule and each witness, measured side by side in one run.

Problems are random members of the family (widths 1–16, batch 1–8, 1–6 hidden layers), drawn
once; every timed function runs on the same problems, in interleaved rounds, and the table
quotes the median round and its ratio to torch. Run with ``make bench``.
"""

from __future__ import annotations

import statistics

import numpy as np
from rounds import interleaved
from tables import show

from bpcheck.core.datasets import random_data
from bpcheck.core.runtime import one_thread
from bpcheck.mlp.compare import ask_witnesses, compare_rule
from bpcheck.mlp.problem import Problem
from manual import network
from manual.initialisers import truncated_normal
from manual.rules import RULES
from manual.spec import ACTIVATIONS, LOSSES, Spec
from reference import jax_ref, numeric, torch_ref

ROUNDS, PROBLEMS = 7, 200


def random_problem(rng: np.random.Generator) -> Problem:
    depth = int(rng.integers(2, 8))
    loss = str(rng.choice(list(LOSSES)))
    hidden = [name for name, record in ACTIVATIONS.items() if not record.output_only]
    names = [str(rng.choice(hidden)) for _ in range(depth - 1)]
    names.append(str(rng.choice(list(LOSSES[loss].probability_outputs or ACTIVATIONS))))
    sizes = tuple(int(n) for n in rng.integers(1, 17, depth + 1))
    spec = Spec(sizes, tuple(names), loss, str(rng.choice(["sum", "mean"])),
                str(rng.choice(["node", "vector"])), str(rng.choice(["cols", "rows"])))
    X, Y = random_data(spec, int(rng.integers(1, 9)), rng)
    return Problem(spec, truncated_normal(spec, rng), X, Y, 0.1)


def main() -> None:
    with one_thread():  # as the tests and searches run (bpcheck.core.runtime)
        measure()


def measure() -> None:
    rng = np.random.default_rng(0)
    problems = [random_problem(rng) for _ in range(PROBLEMS)]
    cases = {
        "manual (derived)": lambda p: network.gradients(p.spec, p.params, p.X, p.Y),
        "torch": lambda p: torch_ref.gradients(p.spec, p.params, p.X, p.Y),
        "jax (padded, jit)": lambda p: jax_ref.gradients(p.spec, p.params, p.X, p.Y),
        "finite differences": lambda p: numeric.gradients(p.spec, p.params, p.X, p.Y),
        "full check, torch + jax (steps, tolerances, rows)":
            lambda p: compare_rule(RULES["derived"], p, ask_witnesses(p, finite_differences=False)),
        "full check, + finite differences":
            lambda p: compare_rule(RULES["derived"], p, ask_witnesses(p)),
    }
    times = interleaved(cases, problems, ROUNDS)
    medians = {name: statistics.median(values) for name, values in times.items()}
    show("witnesses", f"ms per example: median of {ROUNDS} interleaved rounds over {PROBLEMS} random "
         "family members (mean per example within a round)", ["what", "median ms", "min ms", "× torch"],
         [[name, f"{medians[name]:.3f}", f"{min(values):.3f}", f"{medians[name] / medians['torch']:.2f}"]
          for name, values in times.items()])


if __name__ == "__main__":
    main()
