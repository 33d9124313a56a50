"""Hypothesis profiles (chosen by HYPOTHESIS_PROFILE), JAX in x64, torch on one thread."""

import os

import torch
from hypothesis import HealthCheck, settings

from reference.jax_ref import require_x64

# Deadlines are off everywhere: the first call of each structure compiles a JAX function.
settings.register_profile("dev", max_examples=30, deadline=None)
settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("thorough", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

require_x64()
torch.set_num_threads(1)  # tiny matrices: threads only add overhead and run-to-run noise
