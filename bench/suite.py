"""Wall time, peak memory and verified examples of ``make test``, in one run.

Runs the README's test command as a child process, samples the resident memory of its whole
process tree (make, pytest, every xdist worker) with psutil, sums the CPU time of that tree (every
process it started and waited for, ``RUSAGE_CHILDREN``), and counts the examples Hypothesis
ran through its own observability log (one JSON line per test case). The count includes only
examples that passed — every one of them checked against the witnesses or a property.
Observability adds one line of JSON per example, so the wall time quoted is, if anything, high.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil
from tables import show

ROOT = Path(__file__).resolve().parent.parent


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of a process and all its descendants, now."""
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def kinds(record: dict) -> list[str]:
    """What became of one test case: ``passed`` or ``failed`` (any phase); and, drawn in the
    generate or target phase, ``drawn`` and how: ``discarded`` (a filter, assume or reject
    turned it away) or ``oversized`` (Hypothesis stopped generating it before the test saw it:
    past 5× the simplest example's choices early on, its hard size limit later). Tries of the
    other phases that gave up (shrinking, explaining: larger than the best failure so far, or
    invalid) are ``shrink-aborted``; explicit examples and the final replay of a failure have
    no phase and are not draws."""
    status, metadata = record["status"], record.get("metadata") or {}
    phase = metadata.get("phase")
    generated = phase in ("generate", "target")
    if status != "gave_up":
        return [status, "drawn"] if generated else [status]
    if not generated:
        return ["shrink-aborted"] if phase is not None else []
    return ["oversized"] if metadata.get("data_status") == 0 else ["discarded", "drawn"]


def count_examples(storage: Path) -> Counter:
    """Test cases by ``kinds`` from Hypothesis's observability log."""
    counts: Counter = Counter()
    for log in (storage / "observed").glob("*_testcases.jsonl"):
        for line in log.read_text().splitlines():
            record = json.loads(line)
            if record.get("type") == "test_case":
                counts.update(kinds(record))
    return counts


def children_cpu() -> float:
    """User and system CPU seconds of every process this one started and waited for, so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def main(command: list[str]) -> None:
    cpu_before = children_cpu()
    with tempfile.TemporaryDirectory() as storage:
        env = dict(os.environ, HYPOTHESIS_STORAGE_DIRECTORY=storage,
                   HYPOTHESIS_EXPERIMENTAL_OBSERVABILITY_NOCOVER="1")
        start = time.perf_counter()
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
        watched, peak = psutil.Process(child.pid), 0
        while child.poll() is None:
            peak = max(peak, tree_rss(watched))
            time.sleep(0.2)
        wall = time.perf_counter() - start
        cpu = children_cpu() - cpu_before  # the child is reaped: its tree's CPU is counted
        output = child.stdout.read() if child.stdout else ""
        counts = count_examples(Path(storage))
    if "--durations" in " ".join(command):  # show pytest's slowest-tests section
        print(output[output.find("slowest"):output.rfind("=" * 10)])
    summary = [line for line in output.splitlines() if " passed" in line or " failed" in line]
    drawn, cores = counts["drawn"], os.cpu_count() or 1
    show("suite", f"`{' '.join(command)}` on {cores} cores", ["measure", "value"], [
        ["pytest summary", summary[-1].strip("= ") if summary else "(none)"],
        ["wall time (s)", f"{wall:.0f}"],
        ["CPU time, whole process tree (s)", f"{cpu:.0f}"],
        [f"the least wall time that CPU time allows on {cores} cores (s)", f"{cpu / cores:.0f}"],
        ["peak memory, whole process tree (MiB)", f"{peak / 2**20:.0f}"],
        ["examples passed (verified)", f"{counts['passed']:,}"],
        ["examples drawn (generate phase) and discarded by filters/assume",
         f"{drawn:,} / {counts['discarded']:,}"],
        ["discarded fraction of those drawn", f"{100 * counts['discarded'] / max(drawn, 1):.1f} %"],
        ["draws Hypothesis stopped as too large, before the test saw them", f"{counts['oversized']:,}"],
        ["shrinking tries stopped or invalid", f"{counts['shrink-aborted']:,}"],
        ["verified examples per second", f"{counts['passed'] / wall:.1f}"],
        ["CPU ms per verified example (all of the suite's CPU time over them)",
         f"{1000 * cpu / max(counts['passed'], 1):.0f}"],
    ])
    if child.returncode:
        print(output[-3000:])
        sys.exit(child.returncode)


if __name__ == "__main__":
    main(sys.argv[1:] or ["make", "--no-print-directory", "test"])
