"""The ``bpcheck`` command line: one module per subcommand, each ``main(argv, console) -> int``.

Commands render what the engine (``bpcheck`` outside ``cli``) returns: tables and progress with
rich, figures with matplotlib, options with argparse. The engine imports none of them.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

#: ``bpcheck NAME …`` → the module whose ``main`` runs it, imported only when that command
#: runs; no name (or options only) means ``compare``.
COMMANDS = {name: f"bpcheck.cli.{name}"
            for name in ("compare", "verify", "optim", "diagnose", "mutants", "train", "sweep", "report")}


def command(name: str) -> Callable[[list[str], Console], int]:
    """The ``main(argv, console)`` of command ``name``."""
    return importlib.import_module(COMMANDS[name]).main


#: What BPCHECK_JAX_CACHE may say to keep no cache.
OFF = ("off", "0", "false", "no")


def keep_jax_programs() -> None:
    """Keep the jax witness's compiled programs between runs, as the tests do: in
    ``$XDG_CACHE_HOME/bpcheck/jax`` (default ``~/.cache/bpcheck/jax``); a
    JAX_COMPILATION_CACHE_DIR the user set is left as it is, and BPCHECK_JAX_CACHE=off (or 0,
    false, no) keeps none. Each padded network structure compiles once (about 0.2 s) instead of
    once per run. Set through jax's environment variables, read when jax loads, so nothing is
    imported here; a process that has loaded jax already keeps its own settings."""
    if ("jax" in sys.modules or os.environ.get("BPCHECK_JAX_CACHE", "").lower() in OFF
            or "JAX_COMPILATION_CACHE_DIR" in os.environ):  # the user's own cache, as they set it
        return
    try:
        home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except RuntimeError:  # no home directory (a container's user without one): no cache
        return
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(home / "bpcheck" / "jax")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # ours take < 1 s
    # the cache takes no lock: an entry read while another run writes it fails to load, and jax
    # warns and compiles instead (jax-ml/jax#22718)
    warnings.filterwarnings("ignore", message="Error (reading|writing) persistent compilation cache entry")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    keep_jax_programs()
    console = Console(width=max(Console().width, 100))
    if argv[:1] and argv[0] in COMMANDS:
        return command(argv[0])(argv[1:], console)
    return command("compare")(argv, console)
