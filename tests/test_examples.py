"""The README's "Check your own code" walk-through, run: each example's verdict from
``bpcheck verify`` and from its own pytest file (through the ``bpcheck`` plugin)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.assertions import run_cli

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SLIP = "the penalty applied to biases too"


@pytest.mark.parametrize("target, code, says", [
    ("online_network.py:backprop_rule", 0, "online_network: 40 random networks agree with every witness"),
    ("batch_classifier.py:classifier_rule", 0,
     "batch_classifier: 40 random networks agree with every witness"),
    ("trainer_class.py:trainer_rule", 1,
     "trainer_class: WRONG — on the smallest network Hypothesis found, b"),
])
def test_verify_gives_each_example_its_verdict(target, code, says):
    out = run_cli(["verify", str(EXAMPLES / target), "--examples", "40"], code)
    assert says in out
    if code:
        assert "smallest network (in your conventions)" in out and "params['b" in out
        assert SLIP in out


@pytest.mark.parametrize("target, code, says", [
    ("custom_layers.py:rms_norm", 0, "rms_norm: agrees with torch, jax and finite differences on 20"),
    ("custom_layers.py:rms_norm_slip", 1, "rms_norm: WRONG on"),
])
def test_verify_gives_each_custom_layer_its_verdict(target, code, says):
    out = run_cli(["verify", str(EXAMPLES / target), "--examples", "20"], code)
    assert says in out
    if code:
        assert "your backward is not the gradient of your own forward" in out
        assert "rms_norm1 (rms_norm) x: rel err" in out


def test_verify_json_and_pins():
    out = run_cli(["verify", str(EXAMPLES / "trainer_class.py:trainer_rule"), "--examples", "40",
                   "--layers", "2,3,1", "--json"], 1)
    report = json.loads(out)
    assert report["verdict"] == "WRONG" and report["counterexample"]["sizes"] == [2, 3, 1]
    assert any(SLIP in cause for entry in report["diagnosis"] for cause in entry["explained_by"])


@pytest.mark.parametrize("options, message", [
    (["--layers", "2,3"], "--layers, --dtype: pins a UserRule's network; swish is a UserActivation"),
    (["--activations", "relu,relu,identity", "--layers", "2,3"], "layers=(2, 3) makes a network of depth 1"),
])
def test_pins_that_cannot_apply_are_usage_errors(options, message):
    target = (EXAMPLES / ("user_rules.py:swish" if "--activations" not in options
                          else "batch_classifier.py:classifier_rule"))
    extra = ["--dtype", "float32"] if "--activations" not in options else []
    assert message in run_cli(["verify", str(target), *options, *extra], 2)


def test_the_examples_own_tests_give_the_same_verdicts():
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                          "--bpcheck-examples", "20", str(EXAMPLES)],
                         capture_output=True, text=True, cwd=EXAMPLES.parent, timeout=600)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "1 failed, 9 passed" in out and SLIP in out
    assert "FAILED examples/test_trainer_class.py::test_one_training_step_matches_autodiff" in out
