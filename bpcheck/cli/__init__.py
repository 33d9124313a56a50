"""The ``bpcheck`` command line: one module per subcommand, each ``main(argv, console) -> int``.

Commands render what the engine (``bpcheck`` outside ``cli``) returns: tables and progress with
rich, figures with matplotlib, options with argparse. The engine imports none of them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from rich.console import Console

from bpcheck.cli import interrupts
from bpcheck.cli.exits import EXIT_INTERRUPTED
from bpcheck.core.caches import use_user_cache

#: ``bpcheck NAME …`` → the module whose ``main`` runs it, imported only when that command
#: runs; no name (or options only) means ``compare``.
COMMANDS = {name: f"bpcheck.cli.{name}"
            for name in ("compare", "verify", "optim", "diagnose", "mutants", "train", "sweep", "report")}


def command(name: str) -> Callable[[list[str], Console], int]:
    """The ``main(argv, console)`` of command ``name``."""
    return importlib.import_module(COMMANDS[name]).main


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bpcheck argv``; its exit code (``bpcheck.cli.exits``). Ctrl-C stops it with one
    line and EXIT_INTERRUPTED, no traceback, however it arrives (``bpcheck.cli.interrupts``:
    from the shell, argv None, the process leaves at once, then or after the command)."""
    from_shell = argv is None
    if from_shell:
        interrupts.install("bpcheck")
    argv = list(sys.argv[1:] if argv is None else argv)
    named = bool(argv) and argv[0] in COMMANDS
    name, rest = (argv[0], argv[1:]) if named else ("compare", argv)
    program = f"bpcheck {name}" if named else "bpcheck"
    interrupts.named(program)
    try:
        use_user_cache()
        console = Console(width=max(Console().width, 100))
        code = command(name)(rest, console)
    except SystemExit as done:  # argparse's --help and usage errors
        if not (from_shell and isinstance(done.code, int | None)):
            raise
        code = done.code or 0
    except KeyboardInterrupt:  # in-process (argv given), or before the handler was installed
        if from_shell:
            interrupts.leave(program)
        Console(stderr=True).print(interrupts.message(program), highlight=False, markup=False)
        return EXIT_INTERRUPTED
    if from_shell:
        interrupts.finish(code)
    return code
