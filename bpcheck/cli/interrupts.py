"""Ctrl-C, however it arrives: one line, exit 130, nothing half-written.

A KeyboardInterrupt is not a reliable carrier: raised inside a callback that foreign code runs
(a ``jax.pure_callback``, whose failure XLA turns into an ordinary exception after logging a
traceback; a garbage-collection or weakref callback, where Python prints and ignores it) it is
lost, and the run went on to exit 0 or 1. Raised after the command returned, in the
interpreter's teardown (a second of torch's and jax's atexit work), it killed the process by
the signal (exit −2). So a command run from the shell takes SIGINT with a handler of its own for
the rest of the process's life (``install``): it says the line and leaves at once with
``os._exit`` — nothing runs after it, so nothing can swallow it — except while a file is being
written (``writing``), which is finished first. The commands write their files after the work,
so a run interrupted while working has written none; one interrupted while writing leaves
whole files. A run that is not interrupted leaves the same way (``finish``), skipping the
teardown, where a late SIGINT would otherwise find the handler gone.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from bpcheck.cli.exits import EXIT_INTERRUPTED

#: A terminal's progress line erased and its cursor shown again (rich hides it while a status or
#: progress bar is live, and shows it on the way out, which ``os._exit`` skips).
_RESTORE_TERMINAL = "\r\x1b[2K\x1b[?25h"


class _State:
    program: str | None = None  # "bpcheck verify": the handler is installed
    writing = 0  # files being written (nested)
    pending = False  # SIGINT arrived while writing: leave once the file is whole
    leaving = threading.Lock()


def message(program: str) -> str:
    """The one line an interrupted command prints (on stderr)."""
    return f"{program}: interrupted (Ctrl-C)"


def install(program: str) -> None:
    """From now till the process ends, SIGINT makes ``program`` leave (``leave``). Only from the
    main thread (where Python runs signal handlers), and not where SIGINT is ignored (a
    background job's, as Python itself leaves it)."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN):
        return
    _State.program = program
    signal.signal(signal.SIGINT, _handler)


def named(program: str) -> None:
    """The command is known now (``bpcheck verify``): the line will name it."""
    if _State.program is not None:
        _State.program = program


def _handler(signum, frame) -> None:
    if _State.writing:
        _State.pending = True
        return
    leave()


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, RuntimeError):  # closed, or a flush the signal interrupted
            pass


def leave(program: str | None = None) -> NoReturn:
    """Say that ``program`` was interrupted (stderr, one line) and exit EXIT_INTERRUPTED now."""
    with _State.leaving:  # once, whichever thread or handler gets here first
        _flush()
        try:
            if sys.stdout.isatty():
                sys.stdout.write(_RESTORE_TERMINAL)
            sys.stderr.write(message(program or _State.program or "bpcheck") + "\n")
        except (OSError, ValueError, RuntimeError):
            pass
        _flush()
        os._exit(EXIT_INTERRUPTED)


def finish(code: int) -> NoReturn:
    """Exit with ``code`` now, the output flushed: the interpreter's teardown is skipped (it only
    unloads torch and jax, for a second, and a SIGINT there could not be handled)."""
    _flush()
    os._exit(code)


@contextmanager
def writing() -> Iterator[None]:
    """A file is written inside the block: a SIGINT meanwhile takes effect after it, so the file
    is whole (or, if writing it failed, as the error left it)."""
    _State.writing += 1
    try:
        yield
    finally:
        _State.writing -= 1
        if _State.pending and not _State.writing:
            leave()
