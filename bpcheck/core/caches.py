"""Where bpcheck keeps its files between runs: the user's cache directory, not the folder it is
run in — for the command line (both caches) and for ``import bpcheck`` in a script or notebook
(Hypothesis's files only, and only where Hypothesis is not loaded yet: under pytest it is).

* jax's compiled programs (``jax/``): each padded network structure of the jax witness
  compiles once (about 0.2 s), not once per run. BPCHECK_JAX_CACHE=off (or 0, false, no)
  keeps none; a JAX_COMPILATION_CACHE_DIR the user set is left as it is.
* Hypothesis's files (``hypothesis/``: what it learns from the code it draws for), which it
  would otherwise write to ``.hypothesis/`` in the working directory; a
  HYPOTHESIS_STORAGE_DIRECTORY the user set is left as it is.

Both are set through environment variables, read when jax loads and when Hypothesis first
writes, so nothing is imported here; a process that has loaded either keeps its own settings
(the tests, which call the command line in-process, among them).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

#: What BPCHECK_JAX_CACHE may say to keep no jax cache.
OFF = ("off", "0", "false", "no")


def user_cache() -> Path | None:
    """``$XDG_CACHE_HOME/bpcheck``, by default ``~/.cache/bpcheck``; None without a home."""
    try:
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bpcheck"
    except RuntimeError:  # no home directory (a container's user without one)
        return None


def keep_jax_programs(cache: Path) -> None:
    """jax's persistent compilation cache in ``cache/jax`` (see the module's docstring)."""
    if ("jax" in sys.modules or os.environ.get("BPCHECK_JAX_CACHE", "").lower() in OFF
            or "JAX_COMPILATION_CACHE_DIR" in os.environ):  # the user's own cache, as they set it
        return
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(cache / "jax")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # ours take < 1 s
    # the cache takes no lock: an entry read while another run writes it fails to load, and jax
    # warns and compiles instead (jax-ml/jax#22718)
    warnings.filterwarnings("ignore", message="Error (reading|writing) persistent compilation cache entry")


def keep_hypothesis_files(cache: Path) -> None:
    """Hypothesis's storage in ``cache/hypothesis`` (see the module's docstring)."""
    if "hypothesis" not in sys.modules:  # else its user (pytest, say) has chosen
        os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(cache / "hypothesis"))


def use_user_cache() -> None:
    """Both, where the user has a cache directory."""
    cache = user_cache()
    if cache is not None:
        keep_jax_programs(cache)
        keep_hypothesis_files(cache)
