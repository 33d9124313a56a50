"""Seconds to check each example UserRule with 200 random networks, as ``bpcheck verify`` does
(``bpcheck.check(rule, 200)``), in a fresh process each, median of ROUNDS interleaved rounds.

A fresh process per run counts what a user waits for: importing torch and jax, compiling the
jax witness for each new network depth, the search and its shrinking. Run with ``make bench``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROUNDS, EXAMPLES = 3, 200
ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"online_network": "backprop_rule", "batch_classifier": "classifier_rule",
           "trainer_class": "trainer_rule"}
RUN = ("import sys; sys.path.insert(0, {folder!r}); import bpcheck, {module} as m; "
       "r = bpcheck.check(m.{name}, {examples}); print(r.verdict, r.examples)")


def run_once(module: str, name: str) -> tuple[float, str]:
    code = RUN.format(folder=str(ROOT / "examples"), module=module, name=name, examples=EXAMPLES)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout.strip()


def main() -> None:
    seconds: dict[str, list[float]] = {module: [] for module in TARGETS}
    verdicts: dict[str, str] = {}
    for _ in range(ROUNDS):
        for module, name in TARGETS.items():
            elapsed, verdicts[module] = run_once(module, name)
            seconds[module].append(elapsed)
    table = Table(title=f"checking a UserRule with {EXAMPLES} random networks, fresh process "
                        f"(median of {ROUNDS})")
    for column in ("example", "verdict, networks checked", "median s", "fastest s"):
        table.add_column(column)
    for module, times in seconds.items():
        table.add_row(module, verdicts[module], f"{statistics.median(times):.1f}", f"{min(times):.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
