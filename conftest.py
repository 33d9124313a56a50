"""Hypothesis profiles (chosen by HYPOTHESIS_PROFILE), JAX in x64 with a persistent compilation
cache, torch and BLAS on one thread, and the example-database keys that pytest and HypoFuzz share."""

import multiprocessing
import os
from pathlib import Path

import jax
import pytest
from hypothesis import HealthCheck, Phase, settings

from bpcheck.core.runtime import bounded_programs, frozen_heap, one_thread
from reference.jax_ref import require_x64
from tests.example_database import from_environment

# Deadlines are off everywhere: the first call of each structure compiles a JAX function.
# `ci` is derandomized, so it uses no example database; the others use the local directory,
# or also a shared Redis when BPCHECK_EXAMPLE_DB names one (tests/example_database.py).
# Each profile starts from Hypothesis's own defaults: with CI set in the environment, a profile
# registered without a parent would inherit Hypothesis's built-in `ci` profile (derandomized, no
# database), and HypoFuzz skips derandomized tests.
BASE = settings.get_profile("default")
settings.register_profile("dev", BASE, max_examples=30, deadline=None, database=from_environment())
settings.register_profile("ci", BASE, max_examples=100, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])  # as Hypothesis's own `ci`
settings.register_profile("thorough", BASE, max_examples=1000, deadline=None, database=from_environment(),
                          suppress_health_check=[HealthCheck.too_slow])
# `replay` runs only what the database holds (a fuzzing campaign's finds) and shrinks it.
settings.register_profile("replay", settings.get_profile("dev"), print_blob=True,
                          phases=[Phase.explicit, Phase.reuse, Phase.shrink])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

require_x64()
# XLA programs compiled by one xdist worker (or an earlier run) are reused by the others: a fresh
# clone compiles each padded structure once instead of once per worker. A program is cached
# however quickly it compiled (JAX's default skips those under 1 s: all of ours). The cache
# takes no lock: an entry read while the other worker writes it fails to load, and JAX warns
# and compiles instead (pyproject's filterwarnings ignores that warning). `make clean`
# empties it.
CACHE = Path(__file__).parent / ".cache" / "jax"
jax.config.update("jax_compilation_cache_dir", str(CACHE))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
# and `bpcheck` run as a child process uses it too, not the user's cache (bpcheck.core.caches)
os.environ.update(JAX_COMPILATION_CACHE_DIR=str(CACHE), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
# JAX runs threads, and a forked copy of a threaded process can deadlock: processes started
# through multiprocessing (HypoFuzz's workers in `make fuzz`) start fresh instead.
multiprocessing.set_start_method("spawn", force=True)


@pytest.fixture(scope="session", autouse=True)
def run_as_searches_do():
    """The whole session as ``bpcheck.core.runtime`` runs a search: NumPy's BLAS and torch on one
    thread, and the heap frozen once everything is imported and collected."""
    with one_thread(), frozen_heap():
        yield


@pytest.fixture(autouse=True)
def within_the_mappings():
    """Between tests, as between a search's examples: jax's compiled programs dropped once they
    hold half the memory mappings the process may (``bpcheck.core.runtime.bounded_programs``;
    tests that call the witnesses directly compile outside any search)."""
    bounded_programs()
    yield


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Key every Hypothesis test's examples by its node id, as HypoFuzz does.

    Hypothesis adds the node id to the key of parametrized tests only; HypoFuzz adds it to all.
    Without this, what `make fuzz` finds in a plain test is stored where pytest never looks.
    """
    for item in items:
        given = getattr(getattr(item, "obj", None), "hypothesis", None)
        if given is not None and not hasattr(item, "callspec"):
            given.inner_test._hypothesis_internal_add_digest = item.nodeid.encode()
