"""`make fuzz` finds, records and reports a failure: its machinery run briefly on a planted one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.example_database import DIRECTORY_VARIABLE, ENVIRONMENT_VARIABLE

ROOT = Path(__file__).resolve().parent.parent
PLANTED = "tests/planted_failure.py"


def test_fuzzing_finds_records_and_replays_a_planted_failure(tmp_path: Path) -> None:
    database = tmp_path / "examples"
    environment = {key: value for key, value in os.environ.items() if key != ENVIRONMENT_VARIABLE}
    environment[DIRECTORY_VARIABLE] = str(database)
    environment["HYPOTHESIS_STORAGE_DIRECTORY"] = str(tmp_path / "hypothesis")  # its patch files
    command = [sys.executable, "-m", "tests.fuzzing", "--seconds", "300", "--processes", "1",
               "--until-failure", "--log", str(tmp_path / "fuzz.log"), PLANTED]
    run = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True,
                         timeout=600)
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert any(database.rglob("*")), "the find was not recorded in the example database"
    assert "1 with failures recorded" in output, output
    assert f"FAILED {PLANTED}::test_planted_failure" in output, output
    assert "n=100," in output, output  # the minimal example, shrunk on replay


def test_fuzzing_without_tests_is_a_usage_error(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tests.fuzzing", "--seconds", "5", str(tmp_path / "none.py")]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "could not collect" in run.stdout, run.stdout
