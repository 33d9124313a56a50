"""Timing every benchmark shares: each case on the same problems, in interleaved rounds."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence


def interleaved(cases: dict[str, Callable], problems: Sequence, rounds: int) -> dict[str, list[float]]:
    """Milliseconds per problem of each case, one figure per round, the cases taking turns
    within each round; a warm-up round first (every jax structure compiled once)."""
    for case in cases.values():
        for problem in problems:
            case(problem)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, case in cases.items():
            start = time.perf_counter()
            for problem in problems:
                case(problem)
            times[name].append((time.perf_counter() - start) / len(problems) * 1e3)
    return times
