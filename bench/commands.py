"""Seconds a user waits for each command, in a fresh process each, median of ROUNDS interleaved
rounds: ``bpcheck --help``, the default report, ``bpcheck verify`` of one user activation with
200 networks, and checking each example UserRule with 200 networks (``bpcheck.check(rule, 200)``).

A fresh process per run counts what a user waits for: importing torch and jax, compiling the
jax witness for each new network structure (or reading it from the command line's cache: a
fresh one for this run, warm after the first round; the report and verify are also timed with
the cache off), the search and its shrinking. Run with ``make bench``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tables import show

ROUNDS, EXAMPLES = 3, 200
ROOT = Path(__file__).resolve().parents[1]
BPCHECK = [sys.executable, "-m", "bpcheck"]
CHECK = ("import sys; sys.path.insert(0, {folder!r}); import bpcheck, {module} as m; "
         "r = bpcheck.check(m.{name}, {examples}); print(r.verdict, r.examples)")
USER_RULES = {"online_network": "backprop_rule", "batch_classifier": "classifier_rule",
              "trainer_class": "trainer_rule"}
VERIFY = [*BPCHECK, "verify", "examples/user_rules.py:swish", "--examples", str(EXAMPLES)]
NO_CACHE = {"BPCHECK_JAX_CACHE": "off"}
#: label → (argv, environment added); each must exit 0 (the report's 0: every verdict as
#: expected; verify's: swish agrees; check() prints its verdict, WRONG included, and raises only
#: if it breaks)
COMMANDS = {
    "bpcheck --help": ([*BPCHECK, "--help"], {}),
    "bpcheck (the default report)": (BPCHECK, {}),
    "bpcheck (the default report), jax cache off": (BPCHECK, NO_CACHE),
    f"bpcheck verify examples/user_rules.py:swish --examples {EXAMPLES}": (VERIFY, {}),
    f"bpcheck verify … --examples {EXAMPLES}, jax cache off": (VERIFY, NO_CACHE),
    **{f"check({module}.{name}, {EXAMPLES})": ([sys.executable, "-c", CHECK.format(
        folder=str(ROOT / "examples"), module=module, name=name, examples=EXAMPLES)], {})
       for module, name in USER_RULES.items()},
}


def run_once(argv: list[str], env: dict[str, str], code: int = 0) -> tuple[float, str]:
    """Seconds the command took, and the first line it printed; it must exit ``code``."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != code:
        raise RuntimeError(f"{argv} exited {done.returncode}: {done.stderr[-2000:]}")
    lines = [line for line in done.stdout.strip().splitlines() if not line.startswith("… ")]  # not progress
    return elapsed, lines[0].strip() if lines else ""


def interleaved(commands: dict[str, tuple], rounds: int) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Each command's seconds over ``rounds`` interleaved rounds, and its first line printed:
    label → (argv, extra environment[, the exit code due, else 0]), in a fresh process each,
    with an empty cache of its own (the user's is left alone; the first round meets it empty)."""
    seconds: dict[str, list[float]] = {label: [] for label in commands}
    said: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as cache:
        base = {key: value for key, value in os.environ.items() if not key.startswith("JAX_")}
        base["XDG_CACHE_HOME"] = cache
        for _ in range(rounds):
            for label, (argv, extra, *code) in commands.items():
                elapsed, said[label] = run_once(argv, base | extra, *code)
                seconds[label].append(elapsed)
    return seconds, said


def main() -> None:
    seconds, said = interleaved(COMMANDS, ROUNDS)
    show("commands", f"seconds per command, fresh process each (median of {ROUNDS} interleaved rounds)",
         ["command", "first line printed", "median s", "fastest s"],
         [[label, said[label][:60], f"{statistics.median(times):.2f}", f"{min(times):.2f}"]
          for label, times in seconds.items()])


if __name__ == "__main__":
    main()
