"""The ``bpcheck`` command line: one module per subcommand, each ``main(argv, console) -> int``.

Commands render what the engine (``bpcheck`` outside ``cli``) returns: tables and progress with
rich, figures with matplotlib, options with argparse. The engine imports none of them.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence

from rich.console import Console

from bpcheck.cli.caches import use_user_cache
from bpcheck.cli.exits import EXIT_INTERRUPTED

#: ``bpcheck NAME …`` → the module whose ``main`` runs it, imported only when that command
#: runs; no name (or options only) means ``compare``.
COMMANDS = {name: f"bpcheck.cli.{name}"
            for name in ("compare", "verify", "optim", "diagnose", "mutants", "train", "sweep", "report")}


def command(name: str) -> Callable[[list[str], Console], int]:
    """The ``main(argv, console)`` of command ``name``."""
    return importlib.import_module(COMMANDS[name]).main


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bpcheck argv``; its exit code (``bpcheck.cli.exits``). Ctrl-C stops it with one
    line and EXIT_INTERRUPTED, no traceback (the commands write their files after the work, so
    one interrupted while working has written none)."""
    from_shell = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    named = bool(argv) and argv[0] in COMMANDS
    name, rest = (argv[0], argv[1:]) if named else ("compare", argv)
    try:
        use_user_cache()
        console = Console(width=max(Console().width, 100))
        return command(name)(rest, console)
    except KeyboardInterrupt:
        program = f"bpcheck {name}" if named else "bpcheck"
        Console(stderr=True).print(f"{program}: interrupted (Ctrl-C)", highlight=False, markup=False)
        if from_shell:  # torch's and XLA's threads, stopped mid-work, can crash the interpreter's
            sys.stdout.flush()  # teardown (SIGSEGV seen): leave at once, the line said
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
