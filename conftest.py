"""Hypothesis profiles (chosen by HYPOTHESIS_PROFILE), JAX in x64, torch on one thread."""

import multiprocessing
import os

import torch
from hypothesis import HealthCheck, settings

from reference.jax_ref import require_x64
from tests.example_database import from_environment

# Deadlines are off everywhere: the first call of each structure compiles a JAX function.
# `ci` is derandomized, so it uses no example database; the others use the local directory,
# or also a shared Redis when BPCHECK_EXAMPLE_DB names one (tests/example_database.py).
settings.register_profile("dev", max_examples=30, deadline=None, database=from_environment())
settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("thorough", max_examples=1000, deadline=None, database=from_environment(),
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

require_x64()
# JAX runs threads, and a forked copy of a threaded process can deadlock: processes started
# through multiprocessing (HypoFuzz's workers in `make fuzz`) start fresh instead.
multiprocessing.set_start_method("spawn", force=True)
torch.set_num_threads(1)  # tiny matrices: threads only add overhead and run-to-run noise
