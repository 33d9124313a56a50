"""How arrays are drawn: the cost of a draw, and what shrinking finds, three ways side by side.

``bpcheck.mlp.strategies.array`` draws every array from a seed Hypothesis picks (one choice), cut
from a larger seeded array so that a smaller shape keeps the values it keeps. The other two
ways are the ones it replaced: every entry drawn by Hypothesis (``hypothesis.extra.numpy``,
values shrink too), and entry by entry only for arrays of at most 8 entries (seeded above).
For each way, in one process: the median time of one MLP problem draw (no check; the ways
alternate three times), and, over every MLP mutant (``bpcheck.mlp.mutants``) hunted at three seeds
with 100 examples: how many were caught, after how many networks, the shrunk network's
Σ sizes + N, how many of its values are not 0 or ±2^k (values Hypothesis shrinks to), the
hunts' wall time; and, as the subtle case, ``examples/user_rules.py:swish_wrong`` verified
(its derivative is right at z = 0 only).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tables import show

from bpcheck.mlp import strategies
from bpcheck.mlp.mutants import MUTANTS, hunt_mutant
from bpcheck.user.extend import load_user_rule, verify

SEEDS = (0, 1, 2)
EXAMPLES = 100  # the hunt's budget, as `bpcheck mutants` spends it
SUBTLE = f"{Path(__file__).resolve().parent.parent / 'examples' / 'user_rules.py'}:swish_wrong"
SEEDED = strategies.array


def entry_by_entry(shape, low, high, dtype, smallest=0.0):
    elements = strategies.bounded(low, high, dtype)
    if smallest:
        elements = st.one_of(strategies.bounded(smallest, high, dtype),
                             strategies.bounded(low, -smallest, dtype))
    return hnp.arrays(np.dtype(dtype), shape, elements=elements)


def up_to_8_entries(shape, low, high, dtype, smallest=0.0):
    small = int(np.prod(shape)) <= 8
    return (entry_by_entry if small else SEEDED)(shape, low, high, dtype, smallest)


WAYS = {"seeded (shipped)": SEEDED, "entry by entry ≤ 8, seeded above": up_to_8_entries,
        "entry by entry": entry_by_entry}


def draw_time(draws: int = 300) -> float:
    """Median seconds between calls of a test that only draws ``problems()``."""
    times, last = [], [time.perf_counter()]

    @settings(max_examples=draws, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(strategies.problems())
    def draw(problem) -> None:
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    draw()
    return statistics.median(times[1:])


def unround(problem) -> int:
    """Values of the shrunk network that are not 0 or ±2^k (k ≤ 0): what shrinking left complex."""
    values = np.concatenate([np.ravel(v) for v in (*problem.params.values(), problem.X)]).astype(float)
    mantissa, _ = np.frexp(np.abs(values))
    return int(np.sum((values != 0) & (mantissa != 0.5)))


def size(problem) -> int:
    return sum(problem.spec.sizes) + problem.n_samples


def main() -> None:
    hunt_mutant(next(iter(MUTANTS.values())), 5)  # warm-up: imports, first compilations
    medians = {way: [] for way in WAYS}
    for _ in range(3):  # the ways alternate, so that load on the machine hits them alike
        for way, drawer in WAYS.items():
            strategies.array = drawer
            medians[way].append(draw_time())
    rows = []
    for way, drawer in WAYS.items():
        strategies.array = drawer
        hunts = []
        for mutant in MUTANTS.values():
            for seed in SEEDS:
                start = time.perf_counter()
                hunts.append((hunt_mutant(mutant, EXAMPLES, seed), time.perf_counter() - start))
        caught = [hunt for hunt, _ in hunts if hunt.caught]
        sizes = [size(hunt.minimal) for hunt in caught]
        seconds = [s for _, s in hunts]
        subtle = verify(load_user_rule(SUBTLE), max_examples=EXAMPLES)
        rows.append([way, f"{statistics.median(medians[way]) * 1e3:.2f}", f"{len(caught)}/{len(hunts)}",
                     f"{statistics.median(h.examples_to_catch for h in caught):g}",
                     f"{statistics.median(sizes):g} / {max(sizes)}",
                     str(sum(unround(hunt.minimal) for hunt in caught)),
                     f"{statistics.median(seconds):.2f} / {sum(seconds):.0f}",
                     f"{size(subtle.failure)} after {subtle.examples}" if subtle.failure else "missed"])
    strategies.array = SEEDED
    columns = ["draws", "one draw, ms (median)", "caught", "networks to catch (median)",
               "shrunk Σsizes + N (median / max)", "unround values left", "hunt s (median / total)",
               "swish_wrong: shrunk Σsizes + N"]
    show("draws", f"Drawing arrays, side by side: {len(MUTANTS)} MLP mutants × {len(SEEDS)} seeds, "
         f"{EXAMPLES} examples each", columns, rows)


if __name__ == "__main__":
    main()
