"""Every command as a user runs it: ``bpcheck …`` in a fresh process from an empty folder with a
user's environment (``tests/fresh.py``: no JAX_ENABLE_X64, no Hypothesis profile, no
PYTHONPATH), at the smallest sizes that exercise it; its exit code (``bpcheck.cli.exits``) and
a line it must print. Each case loads torch and jax afresh unless it is a usage error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bpcheck.cli.exits import EXIT_AGREES, EXIT_INCONCLUSIVE, EXIT_USAGE, EXIT_WRONG
from tests.fresh import BPCHECK, run, user_environment

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "user_rules.py"
ONE_FORWARD = ROOT / "examples" / "one_forward.py"

#: A user activation that raises before any network is drawn. (verify's NOT VERIFIED, exit 3,
#: needs a patched registry: tests/test_verify_errors.py checks it in-process.)
ACTIVATIONS = '''
import jax.numpy as jnp, torch
from bpcheck import UserActivation


def boom(z):
    raise ValueError("boom")


raises = UserActivation("raises_early", boom, lambda z, a: 1 - a ** 2, torch=torch.tanh, jax=jnp.tanh)
'''


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One user cache for the module (jax compiles each structure once, as for a user)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def activations(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("user") / "fresh_activations.py"
    path.write_text(ACTIVATIONS)
    return path


#: (argv, exit code, a line of its output), one case per command and code; a path written
#: under the working folder is checked to exist.
CASES = [
    (["--help"], EXIT_AGREES, "Exit codes (every command): 0 agrees; 1 wrong"),
    ([], EXIT_AGREES, "derived: agrees with every witness"),
    (["--layers", "4,8,3", "--activations", "tanh,relu", "--bias", "vector", "--layout", "rows",
      "--reduction", "mean", "--rules", "derived"], EXIT_INCONCLUSIVE, "nothing flows back"),
    (["--layers", "4,x"], EXIT_USAGE, "--layers"),
    (["--network", "conv2d:2,k3;batch_norm;relu;flatten;dense:2", "--input-shape", "1,5,5",
      "--finite-differences", "off"], EXIT_INCONCLUSIVE, "no witness could settle conv1.b"),
    (["--network", "dense:3"], EXIT_USAGE, "add flatten before it"),
    (["--network", "embedding:4,v5;lstm:4;dense:3"], EXIT_USAGE,
     "no --input-shape was given: the default 1,8,8 was used"),
    (["optim", "--steps", "2"], EXIT_AGREES, "the listed conventions are the whole difference"),
    (["optim", "--steps", "0"], EXIT_USAGE, "argument --steps: must be an integer from 1 to"),
    (["verify", f"{EXAMPLES}:swish", "--examples", "2"], EXIT_AGREES, "swish: 2 random networks agree"),
    (["verify", "{activations}:raises"], EXIT_WRONG, "raises_early: your value raised ValueError: boom"),
    (["verify", ""], EXIT_USAGE, "expected MODULE:NAME"),
    # one forward: a layer written once against xp; a NumPy forward alone; a loss written once
    (["verify", f"{ONE_FORWARD}:rms_norm", "--examples", "5"], EXIT_AGREES,
     "rms_norm: agrees with torch, jax and finite differences on 5 random networks"),
    (["verify", f"{ONE_FORWARD}:swish_gate_slip", "--examples", "5"], EXIT_WRONG,
     "swish_gate: WRONG on x — your backward is not the gradient of your own forward — checked "
     "against finite differences of your own forward only; no autodiff witness"),
    (["verify", f"{ONE_FORWARD}:huber", "--examples", "5"], EXIT_AGREES, "huber: 5 random networks agree"),
    (["diagnose", "sign-flip"], EXIT_AGREES, "sign flipped (×−1)"),
    (["diagnose"], EXIT_USAGE, "name a rule"),
    (["mutants", "--examples", "1"], EXIT_WRONG, "missed: "),  # one network misses some
    (["mutants", "--examples", "x"], EXIT_USAGE, "--examples"),
    # the layer catalogue: every layer mutant on its layer alone; one network each catches all 16
    (["mutants", "--network", "nonesuch:3"], EXIT_USAGE, "--network: layer 'nonesuch:3': unknown layer"),
    (["diagnose", "conv_flipped_kernel", "--network", "conv2d:2,k3,p1;relu;flatten;dense:3",
      "--input-shape", "1,5,5"], EXIT_AGREES, "the kernel flipped (convolution taken for cross-correlation)"),
    (["diagnose", "batch_norm_first_term", "--network", "conv2d:2,k3,p1;batch_norm;relu;flatten;dense:3",
      "--input-shape", "1,5,5"], EXIT_AGREES, "the mean and variance terms left out"),
    (["diagnose", "nonesuch", "--network", "conv2d:2,k3"], EXIT_USAGE,
     "unknown rule 'nonesuch' for --network"),
    (["diagnose", "conv_flipped_kernel", "--network", "conv2d:2,k3", "--input-shape", "-1,8,8"],
     EXIT_USAGE, "bpcheck diagnose RULE: error: argument --input-shape"),
    (["sweep", "derived", "--repeats", "1", "--out", "s.png"], EXIT_AGREES, "wrote s.png"),
    (["sweep", "nonesuch"], EXIT_USAGE, "nonesuch"),
    (["sweep", "avg_pool_unscaled", "--network", "avg_pool2d:k2;flatten;dense:3", "--input-shape", "1,4,4",
      "--repeats", "1", "--out", "s.png"], EXIT_AGREES, "avg_pool_unscaled: relative error of its gradient"),
    (["report", "rnn_bptt_one_step", "--network", "rnn:3;dense:2", "--input-shape", "4,2", "--epochs", "1",
      "--markdown", "r.md"], EXIT_AGREES, "wrote r.md"),
    (["report", "derived", "--epochs", "1", "--markdown", "r.md"], EXIT_AGREES, "wrote r.md"),
    (["report", "derived"], EXIT_USAGE, "give --html PATH or --markdown PATH"),
    (["train", "--datasets", "iris", "--epochs", "1", "--lrs", "0.1", "--rules", "derived", "--out", "t"],
     EXIT_AGREES, "wrote t/curves.csv, t/curves.json, t/iris.png"),
    (["train", "--epochs", "x"], EXIT_USAGE, "--epochs"),
]


@pytest.mark.parametrize(("argv", "code", "line"), CASES,
                         ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_a_command_run_from_a_fresh_shell(argv, code, line, cache, activations, tmp_path):
    argv = [arg.format(activations=activations) for arg in argv]
    result = run(argv, tmp_path, cache)
    text = " ".join((result.stdout + result.stderr).split())  # rich wraps at the terminal's width
    assert result.returncode == code, f"bpcheck {' '.join(argv)} exited {result.returncode}:\n{text}"
    assert line in text, text
    assert "Traceback" not in result.stderr
    for written in (arg for arg in argv if arg in ("s.png", "r.md", "t")):
        assert (tmp_path / written).exists()


def test_the_layer_catalogue_is_hunted_whole_and_its_names_can_be_copied(cache, tmp_path):
    """Every layer mutant caught; each name printed whole (a user copies it into ``bpcheck
    diagnose``; the table folded them mid-word) and, without a terminal, no progress bar."""
    from bpcheck.layers.mutants import LAYER_MUTANTS

    result = run(["mutants", "--network", "--examples", "1"], tmp_path, cache)
    assert result.returncode == EXIT_AGREES, result.stdout + result.stderr
    assert f"all {len(LAYER_MUTANTS)} mutants caught" in result.stdout
    printed = set(result.stdout.split())
    assert set(LAYER_MUTANTS) <= printed, set(LAYER_MUTANTS) - printed
    assert "━" not in result.stdout + result.stderr


def test_optax_runs_in_float64_in_a_fresh_process_that_imports_only_its_witness(cache, tmp_path):
    """reference/optim_ref.py switches x64 on itself (``bpcheck optim`` exited 1 without it)."""
    import subprocess
    import sys

    from tests.fresh import user_environment

    code = ("import numpy as np\nfrom reference.optim_ref import optax_trajectory\n"
            "path = optax_trajectory('sgd', {'W': np.ones(2)}, lambda p, t: {'W': np.full(2, 0.1)}, 2,"
            " {'lr': 0.1, 'momentum': 0.0, 'dampening': 0.0, 'nesterov': False, 'weight_decay': 0.0})\n"
            "print(path[-1]['W'].dtype, repr(float(path[-1]['W'][0])))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=user_environment(cache),
                         capture_output=True, text=True, timeout=300)
    assert run.stdout.split() == ["float64", repr(1 - 0.1 * 0.1 - 0.1 * 0.1)], run.stdout + run.stderr


def test_a_wide_network_is_checked_in_memory_linear_in_its_parameters(cache, tmp_path):
    """4-5000-3 has 35,003 parameters; jax's witness once padded every layer to a square of 8,192
    and peaked at 7.1 GB. Measured as the peak resident memory of the command's own process."""
    measure = ("import json, resource, subprocess, sys; "
               "done = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "print(json.dumps([done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    argv = [sys.executable, "-c", measure, BPCHECK, "--layers", "4,5000,3", "--data", "random"]
    done = subprocess.run(argv, cwd=tmp_path, env=user_environment(cache), capture_output=True, text=True,
                          timeout=600)
    code, peak_kb = json.loads(done.stdout)
    assert code == EXIT_AGREES and peak_kb < 1.5e6, (code, peak_kb)


def test_check_from_a_script_keeps_hypothesis_files_in_the_user_cache_not_beside_it(cache, tmp_path):
    """``check()`` in a script (Hypothesis not loaded first, as under pytest) writes nothing into
    the folder it runs in: Hypothesis's files go to the user's cache (bpcheck.core.caches)."""
    code = (f"import sys; sys.path.insert(0, {str(EXAMPLES.parent)!r})\n"
            "from bpcheck import check\nimport user_rules\n"
            "print(check(user_rules.swish, examples=2).verdict)")
    ran = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=user_environment(cache),
                         capture_output=True, text=True, timeout=300)
    assert ran.stdout.split() == ["agrees"], ran.stdout + ran.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == []
    assert (cache / "bpcheck" / "hypothesis").is_dir()
