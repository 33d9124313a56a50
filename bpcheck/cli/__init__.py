"""The ``bpcheck`` command line: one module per subcommand, each ``main(argv, console) -> int``.

Commands render what the engine (``bpcheck`` outside ``cli``) returns: tables and progress with
rich, figures with matplotlib, options with argparse. The engine imports none of them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console

from bpcheck.cli import compare, diagnose, mutants, optim, report, sweep, train, verify

#: ``bpcheck NAME …`` → the function that runs it; no name (or options only) means ``compare``.
COMMANDS = {
    "compare": compare.main,
    "verify": verify.main,
    "optim": optim.main,
    "diagnose": diagnose.main,
    "mutants": mutants.main,
    "train": train.main,
    "sweep": sweep.main,
    "report": report.main,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    console = Console(width=max(Console().width, 100))
    if argv[:1] and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:], console)
    return compare.main(argv, console)
