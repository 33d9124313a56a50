"""Milliseconds per example of checking networks of layers, each part measured side by side.

Four problem sets, drawn once: the issue's small CNN (conv2d:8,k3,s1,p1;relu;max_pool2d:k2;
flatten;dense:10 on 1×8×8, batch 4) at 20 seeds, 40 random networks of
``bpcheck.layers.strategies.networks`` (float64), a small sequence model (SEQUENCE on 8 tokens,
batch 4, the loss at every step with padding) at 10 seeds, and 40 random sequence networks of
``bpcheck.layers.sequence_strategies.sequence_problems``. Every timed function runs on the same
problems in interleaved rounds; jax's structures are compiled in a warm-up round first (a new
structure costs 0.2–0.4 s of compilation, measured apart in the last row). Run with
``make bench``.
"""

from __future__ import annotations

import statistics
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rounds import interleaved
from tables import show

from bpcheck.core.runtime import one_thread
from bpcheck.layers.compare import (
    DERIVED,
    ask_stack_witnesses,
    compare_stack_rule,
    differences,
    witness,
)
from bpcheck.layers.consistency import OWN_FORWARD_ENTRIES
from bpcheck.layers.differences import projected
from bpcheck.layers.problem import StackProblem, random_problem
from bpcheck.layers.sequence_strategies import sequence_problems
from bpcheck.layers.strategies import NETWORK_SCALES, networks, stack_problems
from manual import stack_network
from manual.stack import Stack
from reference.projection import DIRECTIONS

ROUNDS = 5
CNN = "conv2d:8,k3,s1,p1;relu;max_pool2d:k2;flatten;dense:10"
SEQUENCE = "embedding:4,v6;gru:6;attention:h2,causal;dense:3"


def drawn(count: int, sequences: bool = False) -> list[StackProblem]:
    """``count`` random networks (sequence networks) with their values, as the tests draw them."""
    found: list[StackProblem] = []

    @settings(max_examples=count, database=None, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def draw(data):
        found.append(data.draw(sequence_problems()) if sequences
                     else data.draw(stack_problems(data.draw(networks()), scales=NETWORK_SCALES)))

    draw()
    return found[:count]


def cases() -> dict:
    torch_w, jax_w = witness("torch"), witness("jax")

    def full(p, fd=True):
        return compare_stack_rule(DERIVED, p, ask_stack_witnesses(p, fd), own_forward=fd)

    return {
        "manual (derived), gradients": lambda p: stack_network.gradients(*p.arrays()),
        "torch": lambda p: torch_w.gradients(*p.arrays()),
        "jax (jit)": lambda p: jax_w.gradients(*p.arrays()),
        "finite differences of torch's forward, every entry (--finite-differences all)":
            lambda p: differences(lambda v: torch_w.losses(p.stack, v, p.y, p.masks, p.x), p, copies=1024),
        "finite differences of the rule's own forward, ≤ 128 entries (all)":
            lambda p: differences(DERIVED.own_loss(p), p, OWN_FORWARD_ENTRIES),
        "finite differences of torch's forward by projection": lambda p: projected(
            lambda v: torch_w.losses(p.stack, v, p.y, p.masks, p.x), p, True,
            1 if torch_w.one_at_a_time(p.stack) else DIRECTIONS),
        "finite differences of the rule's own forward by projection":
            lambda p: projected(DERIVED.own_loss(p), p, False, 1),
        "full check, torch + jax (reruns, steps, rows)": lambda p: full(p, fd=False),
        "full check, + both finite differences by projection (default)": full,
    }


def measure(title: str, problems: list[StackProblem], append: bool) -> None:
    times = interleaved(cases(), problems, ROUNDS)
    medians = {what: statistics.median(values) for what, values in times.items()}
    rows = [[what, f"{medians[what]:.2f}", f"{min(values):.2f}", f"{medians[what] / medians['torch']:.1f}"]
            for what, values in times.items()]
    if not append:  # once: the CNN at batch sizes not seen yet, each compiled anew
        fresh = [random_problem(Stack(CNN, (1, 8, 8)), 5 + i, seed=i) for i in range(5)]
        start = time.perf_counter()
        for problem in fresh:
            witness("jax").gradients(*problem.arrays())
        rows.append(["jax's first call on a new structure (compilation)",
                     f"{(time.perf_counter() - start) / len(fresh) * 1e3:.0f}", "", ""])
    show("layers", title, ["what", "median ms", "min ms", "× torch"], rows, append=append)


def main() -> None:
    with one_thread():
        cnn = [random_problem(Stack(CNN, (1, 8, 8)), 4, seed=seed) for seed in range(20)]
        measure(f"ms per example, the small CNN ({CNN} on 1×8×8, batch 4, "
                f"{sum(p.n_params + p.x.size for p in cnn[:1])} parameter and input entries): median "
                f"of {ROUNDS} interleaved rounds over 20 seeds", cnn, append=False)
        random = drawn(40)
        entries = statistics.median(p.n_params + p.x.size for p in random)
        measure(f"ms per example, 40 random networks of the tests' strategy (median "
                f"{entries:.0f} parameter and input entries): median of {ROUNDS} interleaved rounds", random,
                append=True)
        small = [random_problem(Stack(SEQUENCE, (8,)), 4, seed=seed) for seed in range(10)]
        measure(f"ms per example, a small sequence model ({SEQUENCE} on 8 tokens, batch 4, loss at "
                f"every step, {small[0].n_params} parameter entries; finite differences run it layer by "
                f"layer, each layer once per distinct input and parameters): median of {ROUNDS} "
                "interleaved rounds over 10 seeds", small, append=True)
        sequences = drawn(40, sequences=True)
        entries = statistics.median(p.n_params + (0 if p.stack.tokens else p.x.size) for p in sequences)
        measure(f"ms per example, 40 random sequence networks of the tests' strategy (median "
                f"{entries:.0f} parameter and input entries): median of {ROUNDS} interleaved rounds",
                sequences, append=True)


if __name__ == "__main__":
    main()
