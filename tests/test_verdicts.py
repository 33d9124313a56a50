"""Verdicts carry information: measured allowances, ``inconclusive`` where they cannot, no false
passes in float32, at saturation or in BCE on probabilities."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import assume, given, note
from hypothesis import strategies as st

from bpcheck.cli import main
from bpcheck.cli.compare import EXIT_INCONCLUSIVE
from bpcheck.compare import AGREES, DIFFERS, INCONCLUSIVE, Problem, ask_witnesses, compare_rule
from bpcheck.strategies import problems, specs
from manual import losses, network
from manual.rules import RULES, UpdateRule
from manual.spec import Spec
from tests.assertions import describe_problem


def flipped(spec, params, X, Y, lr):
    return {name: -g for name, g in network.gradients(spec, params, X, Y).items()}


def flipped_step(spec, params, X, Y, lr):
    return {name: params[name] - lr * g for name, g in flipped(spec, params, X, Y, lr).items()}


SIGN_FLIP = UpdateRule("sign-flip", "the gradient with its sign flipped", True, flipped, flipped_step)


def test_float32_report_flags_seed_literal_and_every_derived_row_agrees(tmp_path, capsys):
    path = tmp_path / "float32.json"
    assert main(["--dtype", "float32", "--json", str(path)]) == 0
    assert "seed-literal: differs on W1" in capsys.readouterr().out
    by_rule = {rule["rule"]: rule for rule in json.loads(path.read_text())["rules"]}
    assert all(row["verdict"] == AGREES for row in by_rule["derived"]["rows"])
    seed_w1 = [row for row in by_rule["seed-literal"]["rows"] if row["parameter"] == "W1"]
    assert seed_w1 and all(row["verdict"] == DIFFERS for row in seed_w1)


@st.composite
def saturated_problems(draw):
    """A sigmoid/tanh network (vector biases) with one hidden unit driven to |z| ∈ [15, 30]."""
    dtype = draw(st.sampled_from(["float64", "float32"]))
    hidden = draw(st.sampled_from(["sigmoid", "tanh"]))
    spec_strategy = specs(activations=(hidden, draw(st.sampled_from(["sigmoid", "tanh", "identity"]))),
                          loss="half-sse", bias="vector", dtype=dtype)
    problem = draw(problems(spec_strategy))
    unit = draw(st.integers(0, problem.spec.sizes[1] - 1))
    params = {name: value.copy() for name, value in problem.params.items()}
    params["W1"][unit] = 0.0
    params["b1"][unit] = draw(st.floats(15.0, 30.0)) * draw(st.sampled_from([-1.0, 1.0]))
    return Problem(problem.spec, params, problem.X, problem.Y, problem.lr)


@given(problem=saturated_problems())
def test_a_sign_flipped_gradient_with_a_saturated_unit_is_never_agrees(problem):
    truth = ask_witnesses(problem, finite_differences=False)
    assume(any(np.max(np.abs(g)) > 0 for g in truth.gradients["torch"].values()))
    note(describe_problem(problem))
    report = compare_rule(SIGN_FLIP, problem, truth)
    assert report.verdict != AGREES
    assert not any(row.agrees for row in report.rows if row.quantity == "gradient"
                   and np.max(np.abs(truth.gradients["torch"][row.parameter])) > 0)


def test_inputs_of_1e150_are_inconclusive_and_say_where():
    spec = Spec((2, 3, 1), ("sigmoid", "sigmoid"))
    rng = np.random.default_rng(0)
    params = {"W1": rng.uniform(-0.5, 0.5, (3, 3)), "W2": rng.uniform(-0.5, 0.5, (1, 4))}
    problem = Problem(spec, params, rng.uniform(-1, 1, (2, 4)) * 1e150, rng.uniform(0, 1, (1, 4)), 0.1)
    truth = ask_witnesses(problem)
    report = compare_rule(RULES["derived"], problem, truth)
    assert report.verdict == INCONCLUSIVE  # σ′ = 0 in every hidden unit: ∂L/∂W1 is all zero
    assert "layer 1 (sigmoid)" in report.saturation and "is saturated" in report.saturation
    assert compare_rule(SIGN_FLIP, problem, truth).verdict != AGREES


def test_bce_gradient_is_the_derivative_of_the_loss_it_reports():
    """σ(30) = 1 − 9.4e−14: the exact ∂L/∂W is σ(30)·x = 1 (torch's floor of p(1 − p) at
    1e−12 gave 0.094); the allowance cannot settle it in float64, so the verdict says so."""
    spec = Spec((1, 1), ("sigmoid",), "bce")
    problem = Problem(spec, {"W1": np.array([[30.0, 0.0]])}, np.ones((1, 1)), np.zeros((1, 1)), 0.1)
    gradient = network.gradients(spec, problem.params, problem.X, problem.Y)["W1"]
    np.testing.assert_allclose(gradient, [[1.0, 1.0]], rtol=1e-2)
    assert compare_rule(SIGN_FLIP, problem, ask_witnesses(problem)).verdict == DIFFERS


def test_bce_clamps_each_log_at_minus_100_in_both_dtypes():
    for dtype in (np.float32, np.float64):
        p, y = np.array([[0.0, 1.0]], dtype), np.array([[1.0, 0.0]], dtype)
        np.testing.assert_array_equal(losses.bce(p, y), [100.0, 100.0])
        np.testing.assert_array_equal(losses.bce_gradient(p, y), [[0.0, 0.0]])  # flat where clamped


def test_saturated_bce_is_reported_inconclusive_with_exit_code_three(capsys):
    argv = ["--layers", "4,8,3", "--activations", "leaky_relu:30,sigmoid", "--loss", "bce",
            "--rules", "derived", "--dtype", "float32"]
    assert main(argv) == EXIT_INCONCLUSIVE
    out = capsys.readouterr().out
    assert "derived: inconclusive on" in out and "is saturated" in out and "try float64" in out


def test_finite_differences_can_be_sampled_or_turned_off_and_the_report_says_which(capsys):
    argv = ["--layers", "4,40,3", "--rules", "derived"]
    assert main([*argv, "--finite-differences", "sample:10"]) == 0
    out = capsys.readouterr().out
    assert "finite differences: 10 of 323 parameter entries, drawn at random" in out
    assert "derived: agrees" in out
    assert main([*argv, "--finite-differences", "off"]) == 0
    out = capsys.readouterr().out
    assert "finite differences: off" in out and " numeric " not in out
    assert main([*argv, "--finite-differences", "auto"]) == 0  # 323 ≤ 5,000: every entry
    assert "every one of the 323 parameter entries" in capsys.readouterr().out


def test_a_bad_finite_differences_choice_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--finite-differences", "some"])
    assert stop.value.code == 2
    assert "--finite-differences: expected all, off, auto or sample:K" in capsys.readouterr().err
