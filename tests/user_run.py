"""``bpcheck`` as a user runs it: a fresh process, the working directory a scratch folder, a
user's environment (none of the test session's settings), RuntimeWarnings fatal."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: The test session's settings a user does not have.
SESSION_ONLY = ("JAX_ENABLE_X64", "HYPOTHESIS_PROFILE", "PYTEST_", "COV_", "BPCHECK_EXAMPLE_DB")


@dataclass
class Ran:
    code: int
    out: str  # stdout, whitespace collapsed
    err: str

    @property
    def text(self) -> str:
        return self.out + " " + self.err


def run_user(argv: list[str], cwd: Path, code: int, timeout: float = 600) -> Ran:
    """``bpcheck argv`` in a fresh process in ``cwd``; asserts its exit code, that it printed no
    traceback and no RuntimeWarning (a warning is an error there: ``-W error::RuntimeWarning``)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(SESSION_ONLY)}
    env |= {"COLUMNS": "200", "PYTHONWARNINGS": "error::RuntimeWarning"}
    done = subprocess.run([sys.executable, "-m", "bpcheck", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    ran = Ran(done.returncode, " ".join(done.stdout.split()), " ".join(done.stderr.split()))
    assert "Traceback" not in ran.text and "Warning:" not in ran.text, ran.text
    assert ran.code == code, f"bpcheck {' '.join(argv)} exited {ran.code}, not {code}: {ran.text}"
    return ran
