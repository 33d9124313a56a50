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


#: An activation whose value sends this process SIGINT when jax's pure_callback runs it (the
#: anchored jax witness, ``bpcheck.user.precision.anchored_jax``): Ctrl-C arriving inside foreign
#: code's callback, where a KeyboardInterrupt was logged by jax, turned into an XLA error and
#: reported as RAISED (exit 1).
INTERRUPTED_IN_A_CALLBACK = '''
import os, signal, traceback
import jax, torch
from scipy.special import expit
from bpcheck import UserActivation

def value(z):
    if any("jax/_src/callback" in frame.filename for frame in traceback.extract_stack()):
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(1000))  # the handler runs at the next bytecodes
    return z * expit(z)

swish = UserActivation("swish_interrupted", value, lambda z, a: expit(z) + a * (1.0 - expit(z)),
                       torch=lambda z: z * torch.sigmoid(z), jax=lambda z: z * jax.nn.sigmoid(z))
'''


def test_ctrl_c_inside_a_callback_jax_runs_still_exits_130(tmp_path):
    (tmp_path / "interrupted.py").write_text(INTERRUPTED_IN_A_CALLBACK)
    process = start(["verify", "interrupted.py:swish", "--examples", "5"], tmp_path, tmp_path / "cache")
    try:
        out, err = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == EXIT_INTERRUPTED, out + err
    assert err == "bpcheck verify: interrupted (Ctrl-C)\n" and out == "", out + err


class _Left(BaseException):
    """os._exit, as the tests below replace it."""


@pytest.fixture
def exits(monkeypatch):
    """The codes ``bpcheck.cli.interrupts`` would leave the process with (os._exit replaced),
    SIGINT's handler put back afterwards."""
    from bpcheck.cli import interrupts

    codes = []

    def leave(code):
        codes.append(code)
        raise _Left

    monkeypatch.setattr(interrupts.os, "_exit", leave)
    for name, value in (("program", None), ("writing", 0), ("pending", False)):
        monkeypatch.setattr(interrupts._State, name, value)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield codes
    signal.signal(signal.SIGINT, previous)


def test_from_the_shell_ctrl_c_after_the_output_still_exits_130(monkeypatch, capsys, exits):
    """Before: the handler was Python's, and a SIGINT in the second of teardown after the output
    killed the process by the signal (exit -2)."""
    from bpcheck import cli

    monkeypatch.setattr(sys, "argv", ["bpcheck", "optim"])
    monkeypatch.setattr(cli, "command", lambda name: lambda argv, console: print("the output") or 0)
    with pytest.raises(_Left):
        cli.main()  # from the shell: it leaves by os._exit, teardown skipped
    assert exits == [0]
    with pytest.raises(_Left):
        signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # a SIGINT now, the output printed
    assert exits == [0, EXIT_INTERRUPTED]
    assert capsys.readouterr() == ("the output\n", "bpcheck optim: interrupted (Ctrl-C)\n")


def test_a_file_being_written_is_finished_before_ctrl_c_leaves(exits):
    from bpcheck.cli import interrupts

    interrupts.install("bpcheck train")
    with pytest.raises(_Left):
        with interrupts.writing():
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
            assert exits == []  # not while writing
    assert exits == [EXIT_INTERRUPTED]
