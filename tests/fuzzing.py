"""`make fuzz`: HypoFuzz over the property tests, then a replay of everything it found.

    python -m tests.fuzzing [--seconds S] [--processes P] [--until-failure] [PYTEST_ARGS...]

HypoFuzz runs until interrupted, so after S seconds (or at its first find, with --until-failure)
its process group gets SIGINT, as Ctrl-C would; its own output, worker tracebacks from that stop
included, goes to a log. What it finds is in the example database under each test's node-id key,
the key pytest reads too (conftest.py). The summary counts the examples each test ran in this
campaign and the failures recorded; then pytest replays the failing tests under the `replay`
profile (explicit examples and the database, then shrinking) and prints each with its minimal
example. Exit status: 0 nothing fails, 1 a test fails on replay, 2 the fuzzer could not run.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

POLL_SECONDS = 2.0
STOP_GRACE_SECONDS = 60.0


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzzing", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="how long to fuzz (default 600)")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                        help="HypoFuzz worker processes (default: one per core)")
    parser.add_argument("--until-failure", action="store_true",
                        help="stop at the first failure recorded, before --seconds")
    parser.add_argument("--log", type=Path, default=Path(".hypothesis/fuzz.log"),
                        help="HypoFuzz's own output (default .hypothesis/fuzz.log)")
    parser.add_argument("pytest_args", nargs="*", default=["tests/"],
                        help="which tests, as for pytest (default tests/)")
    options = parser.parse_args(argv)
    if options.seconds <= 0 or options.processes < 1:
        parser.error("--seconds must be > 0 and --processes ≥ 1")
    return options


def fuzz_targets(pytest_args: list[str]) -> dict[str, bytes]:
    """Node id → database key of every test HypoFuzz would fuzz (its own collection)."""
    from hypofuzz.collection import collect_tests

    targets = collect_tests(pytest_args).fuzz_targets
    return {target.nodeid: target.database_key for target in targets}


def recorded_failures(database, keys: dict[str, bytes]) -> dict[str, int]:
    """Failing examples stored per test: shrunk (the key itself) and not yet shrunk (.secondary)."""
    counts = {nodeid: len(list(database.fetch(key))) + len(list(database.fetch(key + b".secondary")))
              for nodeid, key in keys.items()}
    return {nodeid: count for nodeid, count in counts.items() if count}


def examples_run(database, keys: dict[str, bytes], since: float) -> dict[str, int]:
    """Examples each test ran since `since`, from HypoFuzz's reports.

    A worker's reports carry running totals, so the campaign's count is the sum over workers
    of each one's latest total; reports come at new behaviour and every few seconds, so the
    last seconds before the stop may be missing.
    """
    from hypofuzz.database import HypofuzzDatabase

    reports = HypofuzzDatabase(database).reports
    counts = {}
    for nodeid, key in keys.items():
        latest: dict[str, int] = defaultdict(int)
        for report in reports.fetch(key):
            if report.timestamp >= since:
                total = sum(report.status_counts.values())
                latest[report.worker_uuid] = max(latest[report.worker_uuid], total)
        counts[nodeid] = sum(latest.values())
    return counts


def run_fuzzer(options: argparse.Namespace, until_found) -> int | None:
    """Run HypoFuzz; None when it ran until we stopped it, else its own early exit status."""
    hypothesis = Path(sys.executable).with_name("hypothesis")
    command = [str(hypothesis), "fuzz", "--no-dashboard", "-n", str(options.processes), "--",
               *options.pytest_args, "-p", "no:xdist"]
    options.log.parent.mkdir(parents=True, exist_ok=True)
    columns = (TextColumn("fuzzing"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
               TimeRemainingColumn())
    with options.log.open("w") as log, Progress(*columns, transient=True) as progress:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        task = progress.add_task("fuzz", total=options.seconds)
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < options.seconds:
            progress.update(task, completed=elapsed)
            try:
                return process.wait(timeout=min(POLL_SECONDS, options.seconds - elapsed))
            except subprocess.TimeoutExpired:
                if until_found():
                    break
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return None


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def summary(examples: dict[str, int], failures: dict[str, int], seconds: float) -> Table:
    """One row per test function (its parametrizations summed); failing node ids in full."""
    table = Table(title=f"HypoFuzz, {seconds:.0f} s: {plural(sum(examples.values()), 'example')}, "
                        f"{plural(len(examples), 'test')}, {len(failures)} with failures recorded",
                  caption="cases: the test's parametrizations; examples: as HypoFuzz last reported "
                          "them (it reports in batches, so the last few may be missing)")
    for column, justify in (("test", "left"), ("cases", "right"), ("examples", "right"),
                            ("failures recorded", "left")):
        table.add_column(column, overflow="fold", justify=justify)
    functions: dict[str, list[str]] = defaultdict(list)
    for nodeid in examples:
        functions[nodeid.partition("[")[0]].append(nodeid)
    for function, nodeids in sorted(functions.items()):
        failing = [nodeid for nodeid in nodeids if nodeid in failures]
        which = ", ".join(nodeid[len(function):] or "yes" for nodeid in failing)  # [params]
        table.add_row(escape(function), str(len(nodeids)), f"{sum(examples[n] for n in nodeids):,}",
                      escape(which))
    return table


def replay(nodeids: list[str]) -> int:
    """pytest on the failing tests, reading only the database; its exit status."""
    environment = {**os.environ, "HYPOTHESIS_PROFILE": "replay"}
    command = [sys.executable, "-m", "pytest", *nodeids, "-p", "no:xdist", "-p", "no:cacheprovider",
               "-q", "-rf", "--tb=short"]
    return subprocess.run(command, env=environment).returncode


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    # HypoFuzz skips derandomized profiles such as `ci`; `dev` has the example database.
    os.environ["HYPOTHESIS_PROFILE"] = "dev"
    from hypothesis import settings

    console = Console(width=max(Console().width, 120))
    try:
        keys = fuzz_targets(options.pytest_args)
    except SystemExit as stop:  # HypoFuzz's collection exits when pytest cannot collect
        paths = " ".join(options.pytest_args)
        console.print(f"[red]pytest could not collect {paths}[/red] (exit {stop.code})")
        return 2
    if not keys:
        console.print("[red]no Hypothesis tests to fuzz[/red] in " + " ".join(options.pytest_args))
        return 2
    database = settings().database
    before = recorded_failures(database, keys)
    workers = plural(options.processes, "process", "processes")
    console.print(f"fuzzing {plural(len(keys), 'test')} on {workers} for {options.seconds:.0f} s; "
                  f"HypoFuzz's output: {options.log}")

    def found_new() -> bool:
        return options.until_failure and recorded_failures(database, keys) != before

    since, start = time.time(), time.monotonic()
    early = run_fuzzer(options, found_new)
    if early is not None:
        console.print(f"[red]HypoFuzz stopped by itself (exit {early})[/red]; the end of {options.log}:")
        console.print("".join(options.log.read_text().splitlines(keepends=True)[-30:]), markup=False)
        return 2
    failures = recorded_failures(database, keys)
    console.print(summary(examples_run(database, keys, since), failures, time.monotonic() - start))
    if not failures:
        console.print("no failures recorded")
        return 0
    console.print(f"replaying {plural(len(failures), 'test')} with recorded failures")
    return replay(sorted(failures))


if __name__ == "__main__":
    sys.exit(main())
