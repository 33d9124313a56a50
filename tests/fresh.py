"""Run ``bpcheck`` as a user does: the installed command in a fresh process, from an empty
folder, with none of the test session's settings (JAX_*, XLA_*, HYPOTHESIS_*, PYTHONPATH,
pytest's variables)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

#: The ``bpcheck`` script beside this interpreter (the virtualenv's console script).
BPCHECK = str(Path(sys.executable).with_name("bpcheck"))
#: Variable prefixes a user's shell does not have (the test session sets or may set them).
SESSION = ("JAX_", "XLA_", "HYPOTHESIS_", "PYTHONPATH", "PYTEST_", "BPCHECK_", "COV_", "COVERAGE_")


def user_environment(cache: Path) -> dict[str, str]:
    """os.environ without the session's settings; the user cache (jax's compiled programs,
    Hypothesis's files) in ``cache``, not the real ~/.cache."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(SESSION)}
    return env | {"XDG_CACHE_HOME": str(cache)}


def run(argv: list[str], cwd: Path, cache: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """``bpcheck argv`` in a fresh process: its exit code, stdout and stderr."""
    return subprocess.run([BPCHECK, *argv], cwd=cwd, env=user_environment(cache), capture_output=True,
                          text=True, timeout=timeout)


def start(argv: list[str], cwd: Path, cache: Path) -> subprocess.Popen:
    """``bpcheck argv`` started in a fresh process (pipes for stdout and stderr)."""
    # SIGINT as a shell leaves it: pytest-xdist's workers ignore it, and a child inherits an
    # ignored signal (Python then installs no KeyboardInterrupt handler); a handled one it does not
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen([BPCHECK, *argv], cwd=cwd, env=user_environment(cache),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)
