"""The ``bpcheck`` command line: one module per subcommand, each ``main(argv, console) -> int``.

Commands render what the engine (``bpcheck`` outside ``cli``) returns: tables and progress with
rich, figures with matplotlib, options with argparse. The engine imports none of them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from rich.console import Console

from bpcheck.cli.caches import use_user_cache

#: ``bpcheck NAME …`` → the module whose ``main`` runs it, imported only when that command
#: runs; no name (or options only) means ``compare``.
COMMANDS = {name: f"bpcheck.cli.{name}"
            for name in ("compare", "verify", "optim", "diagnose", "mutants", "train", "sweep", "report")}


def command(name: str) -> Callable[[list[str], Console], int]:
    """The ``main(argv, console)`` of command ``name``."""
    return importlib.import_module(COMMANDS[name]).main


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    use_user_cache()
    console = Console(width=max(Console().width, 100))
    if argv[:1] and argv[0] in COMMANDS:
        return command(argv[0])(argv[1:], console)
    return command("compare")(argv, console)
