"""``make fuzz``: a HypoFuzz campaign, then a replay of the example database that reports.

HypoFuzz (``hypothesis fuzz``) runs the property tests on every core until stopped; each
failure it finds is stored, shrunk, in the example database. A worker that crashes, or a
campaign that ends, prints nothing about it — so the campaign is followed by a *replay*: pytest
reruns only the examples stored in the database (Hypothesis's explicit and reuse phases,
profile ``replay``), prints every failing test with its minimal example, and its exit status
is the campaign's verdict: 0 when nothing stored fails, non-zero otherwise.

    python -m tests.fuzzing --seconds 1800 tests/
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from hypothesis import Phase, settings

ROOT = Path(__file__).resolve().parents[1]
#: Replays what the database holds, shrinking it again; generates nothing new.
REPLAY = {"phases": [Phase.explicit, Phase.reuse, Phase.shrink], "deadline": None, "print_blob": True}


def register_replay_profile(database) -> None:
    settings.register_profile("replay", database=database, **REPLAY)


def _environment(profile: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "HYPOTHESIS_PROFILE": profile, "PYTHONPATH": path}


def campaign(paths: list[str], seconds: float, processes: int | None = None,
             cwd: Path | None = None) -> int:
    """Run HypoFuzz on ``paths`` for ``seconds`` (stopped with SIGINT, as ctrl-C would);
    its exit status, 0 for the planned stop."""
    command = [sys.executable, "-m", "hypothesis", "fuzz", "--no-dashboard"]
    command += ["-n", str(processes)] if processes else []
    process = subprocess.Popen([*command, "--", *paths, "-p", "no:xdist"], cwd=cwd,
                               env=_environment("dev"), start_new_session=True)
    try:
        return process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        return 0


def replay(paths: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    """pytest on the property tests of ``paths`` under the ``replay`` profile (output captured
    and echoed): each stored failure is printed with its minimal example."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-m", "hypothesis", "-p", "no:xdist",
                             "-p", "no:cacheprovider", "-q", "-rf", *paths], cwd=cwd,
                            env=_environment("replay"), capture_output=True, text=True)
    print(result.stdout, result.stderr, sep="", end="")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzzing", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", default=["tests/"])
    parser.add_argument("--seconds", type=float, default=600.0, help="length of the campaign")
    args = parser.parse_args(argv)
    status = campaign(args.paths, args.seconds)
    if status not in (0, -signal.SIGINT):
        print(f"make fuzz: HypoFuzz exited with status {status}")
    result = replay(args.paths)
    if result.returncode == 5:  # no property test collected: nothing was fuzzed either
        print("make fuzz: no property test found in", " ".join(args.paths))
    elif result.returncode:
        print("make fuzz: the example database holds failing examples (above): "
              "rerun one with HYPOTHESIS_PROFILE=replay pytest -m hypothesis NODE_ID")
    return result.returncode or (0 if status in (0, -signal.SIGINT) else status)


if __name__ == "__main__":
    sys.exit(main())
