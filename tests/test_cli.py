"""The ``bpcheck`` command: the seed's report, its exit codes and its JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bpcheck.cli import COMMANDS, command
from manual import network
from manual.rules import RULES, UpdateRule
from tests.assertions import run_cli


def test_default_report_flags_seed_literal_and_exits_zero(tmp_path):
    path = tmp_path / "report.json"
    out = run_cli(["--json", str(path)], 0)
    assert "derived: agrees with every witness" in out
    assert "seed-literal: differs on W1, as expected of a known-wrong rule" in out
    assert "witnesses agree among themselves" in out
    result = json.loads(path.read_text())
    assert result["ok"] is True
    assert result["spec"]["bias"] == "node" and result["spec"]["layout"] == "cols"
    assert result["spec"]["sizes"][0] == 4 and result["spec"]["sizes"][-1] == 3
    by_rule = {rule["rule"]: rule for rule in result["rules"]}
    assert by_rule["derived"]["agrees"] and not by_rule["seed-literal"]["agrees"]
    seed_rows = by_rule["seed-literal"]["rows"]
    assert {row["parameter"] for row in seed_rows if not row["agrees"]} == {"W1"}
    assert {row["witness"] for row in seed_rows} == {"torch", "jax", "numeric"}


@pytest.mark.parametrize("options", [
    ["--layers", "3,7,2", "--activations", "tanh,relu", "--bias", "vector", "--layout", "rows"],
    ["--dtype", "float32", "--seed", "3", "--lr", "0.5"],
    ["--layers", "4,6,3", "--activations", "relu,sigmoid", "--reduction", "mean", "--data", "random"],
])
def test_options_choose_the_network_and_the_derived_rule_still_agrees(options):
    assert "derived: agrees with every witness" in run_cli(options, 0)


def test_rules_that_cannot_run_a_spec_say_why():
    assert "seed-literal: not run — the seed's program uses a bias node" in run_cli(["--bias", "vector"], 0)


@pytest.mark.parametrize(("options", "message"), [
    (["--activations", "sigmoid,swish"], "--activations: activations[1]='swish' is unknown"),
    (["--layers", "5,3,3", "--data", "iris"], "iris needs sizes (4, …, 3)"),
    (["--rules", "nope"], "--rules: unknown ['nope']"),
    (["--layers", "4,0,3"], "--layers: sizes[1]=0: every layer needs width >= 1"),
    (["--layers", "4"], "--layers: sizes=(4,) needs at least (inputs, outputs)"),
    (["--lr", "-1"], "--lr: lr=-1.0 must be finite and >= 0"),
    (["--steps", "5"], "--steps and --optimizer-options need --optimizer"),
])
def test_bad_options_exit_two_with_a_message(options, message):
    assert message in run_cli(options, 2)


def test_a_wrong_rule_that_claims_to_be_correct_fails_the_run(monkeypatch):
    def doubled(spec, params, X, Y, lr):
        return {name: 2 * g for name, g in network.gradients(spec, params, X, Y).items()}

    wrong = UpdateRule("doubled", "twice the gradient", True, doubled,
                       lambda spec, params, X, Y, lr: {n: params[n] - lr * g
                                                      for n, g in doubled(spec, params, X, Y, lr).items()})
    monkeypatch.setitem(RULES, "doubled", wrong)
    assert "doubled: DIFFERS on W1, W2" in run_cli(["--rules", "doubled"], 1)


@pytest.mark.parametrize(("options", "message"), [
    (["--layers", "4,5,5,3", "--activations", "tanh,relu"], "activations has 2 names"),
    (["--layers", "4,5,3", "--activations", "softmax,sigmoid"], "softmax is allowed only at the output"),
    (["--layers", "4,5,3", "--activations", "tanh,relu", "--loss", "bce"], "loss='bce' takes probabilities"),
    (["--l2", "-1"], "l2=-1.0 must be a finite number >= 0"),
])
def test_bad_family_options_exit_two_with_a_message(options, message):
    assert message in run_cli(options, 2)


def test_a_deep_family_member_from_the_command_line():
    options = ["--layers", "4,8,8,3", "--activations", "tanh,relu,softmax", "--loss", "softmax-ce",
               "--bias", "vector", "--layout", "rows", "--dtype", "float32"]
    out = run_cli(options, 0)
    assert "derived: agrees with every witness" in out and "W3 3×8" in out and "b3 3" in out


def test_optim_prints_the_convention_table():
    out = run_cli(["optim", "--steps", "3"], 0)
    for name in ("sgd", "adagrad", "rmsprop", "adam", "adamw", "adamax"):
        assert name in out
    assert "eps_placement" in out and "the listed conventions are the whole difference" in out


def test_optimizer_option_reports_every_step_against_both_frameworks():
    out = run_cli(["--optimizer", "rmsprop", "--optimizer-options", "centered=true,momentum=0.5",
                   "--steps", "2", "--rules", "derived"], 0)
    assert "rmsprop: agrees with torch.optim and optax at every step" in out
    assert out.count("agrees") >= 2 * 2 * 2  # steps × parameters × frameworks


@pytest.mark.parametrize(("argv", "message"), [
    (["--optimizer", "adam", "--optimizer-options", "beta1=1.5"], "beta1 must be in [0, 1)"),
    (["--optimizer", "adam", "--optimizer-options", "gamma=1"], "unknown hyperparameter"),
    (["--optimizer", "adam", "--steps", "0"], "argument --steps: must be an integer from 1 to 100, got 0"),
    (["diagnose", "no-such-rule"], "unknown rule 'no-such-rule'"),
])
def test_bad_optimizer_and_diagnose_arguments_exit_two(argv, message):
    assert message in run_cli(argv, 2)


def test_diagnose_names_the_seed_literal_causes():
    out = run_cli(["diagnose", "seed-literal"], 0)
    assert "W1" in out and "σ′ of layer 2 (sigmoid) missing" in out and "already updated" in out


def test_every_subcommand_names_a_function():
    for name in COMMANDS:
        assert callable(command(name)), name


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_imports_no_witness_framework_or_heavy_library(command):
    """Start-up: the help of every command loads neither torch, jax, Hypothesis, scikit-learn
    nor scipy."""
    argv = [command, "--help"] if command else ["--help"]
    code = ("import sys, contextlib, io\nfrom bpcheck.cli import main\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            f"    main({argv!r})\n"
            "print(sorted({'torch', 'jax', 'hypothesis', 'sklearn', 'scipy'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_the_default_report_loads_only_the_witnesses_frameworks():
    """Start-up of the default report: torch and jax, but not torch._dynamo (which a
    torch.optim optimizer object's first step loads), scikit-learn or scipy.stats; then a
    network of layers with a loss on labels, in the same process: not sympy either (0.5 s),
    which F.cross_entropy under torch.func.vmap loads."""
    code = ("import sys, contextlib, io\nfrom bpcheck.cli import main\n"
            "heavy = {'torch', 'jax', 'torch._dynamo', 'sklearn', 'scipy.stats', 'sympy'}\n"
            "for argv in ([], ['--network', 'conv2d:2,k3;relu;flatten;dense:3', '--input-shape', '1,5,5']):\n"
            "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "        main(argv)\n"
            "    print(sorted(heavy & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-2:] == ["['jax', 'torch']"] * 2
