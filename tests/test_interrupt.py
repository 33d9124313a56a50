"""Ctrl-C: ``bpcheck`` sent SIGINT in the middle of a long job exits 130 with one line on
stderr, no traceback, and no partial output file."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from bpcheck.cli.exits import EXIT_INTERRUPTED
from tests.fresh import start

pytestmark = pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc (Linux)")


def _loaded(pid: int, library: str) -> bool:
    """Whether process ``pid`` has mapped a shared library whose path contains ``library``."""
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.parametrize(("argv", "written"), [
    # finite differences on all 41,203 parameters of a 4-200-200-3 network: minutes of work
    (["--layers", "4,200,200,3", "--data", "random", "--samples", "100", "--rules", "derived",
      "--finite-differences", "all", "--json", "out.json"], "out.json"),
    (["verify", str(Path(__file__).parent.parent / "examples" / "user_rules.py") + ":swish",
      "--examples", "100000"], None),
])
def test_ctrl_c_exits_130_with_one_line_and_writes_nothing(tmp_path, argv, written):
    process = start(argv, tmp_path, tmp_path / "cache")
    try:
        deadline = time.monotonic() + 300
        while not _loaded(process.pid, "libtorch") and time.monotonic() < deadline:  # the work began
            assert process.poll() is None, process.communicate()
            time.sleep(0.2)
        time.sleep(3)  # into the comparison (jax loads, then the witnesses run)
        assert process.poll() is None, "the job ended before it was interrupted"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == EXIT_INTERRUPTED, out + err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().endswith("interrupted (Ctrl-C)") and err.strip().count("\n") == 0, err
    assert written is None or not (tmp_path / written).exists()


def test_the_interrupt_handler_is_the_command_lines(monkeypatch, capsys):
    """In-process: whatever a command is doing, KeyboardInterrupt becomes 130 and one line."""
    from bpcheck import cli

    def interrupted(argv, console):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "command", lambda name: interrupted)
    assert cli.main(["optim"]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "bpcheck optim: interrupted (Ctrl-C)\n"
    assert sys.exc_info() == (None, None, None)
