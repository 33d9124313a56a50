"""Verdicts carry information: measured allowances, ``inconclusive`` where they cannot, no false
passes in float32, at saturation or in BCE on probabilities."""

from __future__ import annotations

import json
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, note
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bpcheck.cli.exits import EXIT_INCONCLUSIVE
from bpcheck.core.tolerances import SENSITIVITY_RUNS, rerun_perturbation
from bpcheck.core.verdicts import AGREES, DIFFERS, INCONCLUSIVE
from bpcheck.mlp.allowances import data_gradients, worst_case_allowance
from bpcheck.mlp.compare import ask_witnesses, compare_rule
from bpcheck.mlp.problem import Problem
from manual import losses, network
from manual.rules import RULES, UpdateRule
from manual.spec import Spec, param_shapes
from reference import torch_ref
from tests.assertions import describe_problem, run_cli
from tests.saturated import saturated_problems


def flipped(spec, params, X, Y, lr):
    return {name: -g for name, g in network.gradients(spec, params, X, Y).items()}


def flipped_step(spec, params, X, Y, lr):
    return {name: params[name] - lr * g for name, g in flipped(spec, params, X, Y, lr).items()}


SIGN_FLIP = UpdateRule("sign-flip", "the gradient with its sign flipped", True, flipped, flipped_step)


def test_float32_report_flags_seed_literal_and_every_derived_row_agrees(tmp_path):
    path = tmp_path / "float32.json"
    assert "seed-literal: differs on W1" in run_cli(["--dtype", "float32", "--json", str(path)], 0)
    by_rule = {rule["rule"]: rule for rule in json.loads(path.read_text())["rules"]}
    assert all(row["verdict"] == AGREES for row in by_rule["derived"]["rows"])
    seed_w1 = [row for row in by_rule["seed-literal"]["rows"] if row["parameter"] == "W1"]
    assert seed_w1 and all(row["verdict"] == DIFFERS for row in seed_w1)


@given(problem=saturated_problems(largest_z=30.0))
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


def test_saturated_bce_is_reported_inconclusive_with_exit_code_three():
    argv = ["--layers", "4,8,3", "--activations", "leaky_relu:30,sigmoid", "--loss", "bce",
            "--rules", "derived", "--dtype", "float32"]
    out = run_cli(argv, EXIT_INCONCLUSIVE)
    assert "derived: inconclusive on" in out and "is saturated" in out and "try float64" in out


def test_finite_differences_can_be_sampled_or_turned_off_and_the_report_says_which():
    argv = ["--layers", "4,40,3", "--rules", "derived"]
    out = run_cli([*argv, "--finite-differences", "sample:10"], 0)
    assert "10 of 323 parameter entries, drawn at random" in out
    assert "derived: agrees" in out
    out = run_cli([*argv, "--finite-differences", "off"], 0)
    assert "finite differences: off" in out and " numeric " not in out
    out = run_cli([*argv, "--finite-differences", "auto"], 0)  # by projection, at any size
    assert "finite differences: along 2 random directions of each parameter" in out
    assert " numeric " in out and (" w0 " in out or " w1 " in out)
    assert "every one of the 323 parameter entries" in run_cli([*argv, "--finite-differences", "all"], 0)


def test_a_bad_finite_differences_choice_is_a_usage_error():
    out = run_cli(["--finite-differences", "some"], 2)
    assert "--finite-differences: expected all, off, auto or sample:K" in out


# --- gradients that are zero by cancellation ---------------------------------------------------
# Found by the 20-seed false-alarm campaigns (seeds 9 and 10, twice): identical rows of the last
# weight matrix make every softmax output equal, the softmax's vjp sums to zero, and the
# float64 data gradient is exactly 0 for a whole parameter (the penalty's λW aside), while a
# correct rule's own rounding leaves noise. A sum Wᵀδ that cancels shows in reruns that perturb
# the backward values; a cancellation inside one vjp does not, and gets the worst case τ·S.

def zero_by_cancellation_float32_bce_logits() -> Problem:
    spec = Spec((1,) * 7 + (16,), ("sigmoid",) * 6 + ("softmax",), "bce-logits", "sum", "node",
                "cols", "float32")
    params = {f"W{k}": np.zeros((1, 2), np.float32) for k in range(1, 7)}
    params["W7"] = np.full((16, 2), 0.5, np.float32)
    return Problem(spec, params, np.ones((1, 2), np.float32), np.zeros((16, 2), np.float32), 1.0)


def zero_by_cancellation_float64_softmax_ce() -> Problem:
    spec = Spec((11, 3, 1, 2), ("relu", "sigmoid", "sigmoid"), "softmax-ce")
    params = {"W1": np.full((3, 12), 0.25), "W2": np.zeros((1, 4)), "W3": np.full((2, 2), 0.3359375)}
    return Problem(spec, params, np.ones((11, 1)), np.array([[6.21125225e-168], [0.0]]), 1.0)


def zero_by_cancellation_float64_labels() -> Problem:
    spec = Spec((4, 7, 11, 16, 7, 5, 2, 2), ("leaky_relu",) + ("sigmoid",) * 6, "softmax-ce-labels")
    params = {"W1": np.full((7, 5), 0.25), "W2": np.zeros((11, 8)), "W3": np.zeros((16, 12)),
              "W4": np.zeros((7, 17)), "W5": np.zeros((5, 8)), "W6": np.zeros((2, 6)),
              "W7": np.full((2, 3), 0.09375)}
    params["W6"][0, 0] = 0.25
    return Problem(spec, params, np.ones((4, 1)), np.array([0]), 1.0)


def zero_by_cancellation_float64_labels_with_penalty() -> Problem:
    """Campaign seed 10's draw: the penalty on one weight of 1e−218 is all of W4's gradient."""
    spec = Spec((4, 7, 9, 16, 9, 1, 2, 2), ("leaky_relu",) + ("sigmoid",) * 6, "softmax-ce-labels",
                "sum", l2=0.25)
    params = {"W1": np.full((7, 5), 0.25), "W2": np.zeros((9, 8)), "W3": np.zeros((16, 10)),
              "W4": np.zeros((9, 17)), "W5": np.full((1, 10), 0.25),
              "W6": np.array([[0.5, 0.0], [0.0, 0.0]]), "W7": np.full((2, 3), 0.078125)}
    params["W4"][0, 0] = 1.04806163e-218
    return Problem(spec, params, np.ones((4, 1)), np.array([0]), 1.0)


def zero_by_cancellation_float32_bce_logits_with_penalty() -> Problem:
    """The softmax's vjp cancels inside one layer; W6's gradient is the penalty's λW alone."""
    problem = zero_by_cancellation_float32_bce_logits()
    params = {**problem.params, "W6": np.array([[1e-3, 0.0]], np.float32)}
    return Problem(problem.spec.replace(l2=0.25), params, problem.X, problem.Y, 1.0)


def noise_by_cancellation_float32_bce_on_softmax() -> Problem:
    """Found by a dev run: equal rows of W4 under a softmax; the float64 truth of W3 is not 0
    but its own rounding noise (1e−18), which float32's is far above (1e−9)."""
    spec = Spec((1, 1, 1, 1, 7), ("identity", "sigmoid", "sigmoid", "softmax"), "bce", dtype="float32")
    params = {f"W{k}": np.zeros((1, 2), np.float32) for k in (1, 2, 3)}
    params["W4"] = np.full((7, 2), 0.5, np.float32)
    return Problem(spec, params, np.ones((1, 1), np.float32), np.full((7, 1), 0.15625, np.float32), 1.0)


def test_a_gradient_that_is_float64_rounding_noise_is_never_differs():
    problem = noise_by_cancellation_float32_bce_on_softmax()
    truth = ask_witnesses(problem, finite_differences=False)
    noise = worst_case_allowance(problem.in_float64())[1]  # τ₆₄·S
    exact = truth.gradients["torch"]
    assert any(np.any(exact[name]) and np.all(np.abs(exact[name]) <= noise[name]) for name in exact)
    report = compare_rule(RULES["derived"], problem, truth)
    assert report.verdict == INCONCLUSIVE, [(r.parameter, r.witness, r.verdict) for r in report.rows]


def float32_cancellation_five_layers() -> Problem:
    """A dev run's false alarm (kept in tests/data): W1 all 0.01, W2 zero, W3 one value, so the
    hidden errors are sums of equal terms that cancel to ~1e−6 of their size; W4 has entries
    that cancel to float64 noise. A correct float32 rule's error on W2 was 1.4× the allowance
    when float32 reruns counted 2 roundings per value, and W4's noise entries were judged
    against a measured allowance no rerun can give them."""
    arrays = np.load(Path(__file__).parent / "data" / "float32_cancellation_five_layers.npz")
    spec = Spec((3, 12, 6, 11, 9, 16), ("softplus",) * 4 + ("leaky_relu",), "softmax-ce", dtype="float32")
    params = {name: arrays[name] for name in ("W1", "W2", "W3", "W4", "W5")}
    return Problem(spec, params, arrays["X"], arrays["Y"], float(arrays["lr"]))


def test_a_correct_float32_rule_on_cancelling_sums_is_not_differs():
    problem = float32_cancellation_five_layers()
    truth = ask_witnesses(problem, finite_differences=False)
    report = compare_rule(RULES["derived"], problem, truth)
    assert report.verdict != DIFFERS, [(r.parameter, r.witness, r.error.max_abs, r.tolerance)
                                       for r in report.rows if r.differs]
    error = np.abs(network.gradients(*problem.arrays())["W2"] - truth.gradients["torch"]["W2"])
    assert error.max() > truth.allowance["W2"].max() / 4, "the allowance is not tight here"


#: Two dev-run draws of a float32 false alarm, now fixed: BCE on a softmax output with uniform
#: (or all-zero) targets feeds the softmax vjp a⊙(g − Σ a g) nearly equal g, so it cancels to
#: ~1e−4 of g; the NumPy rule's rounding of that C-term sum exceeded the allowance (1.5× in the
#: first draw, 5.4× in the second, from the issue-13 campaign's seed 1): the reruns' independent
#: ±ρ on g average out in the one shared sum like √C, whose rounding reaches every output
#: alike. The reruns now also move that sum by ±ρ·Σ|a g| (``reference.torch_ref._common_mode``):
#: both draws come out inconclusive, the gradient there being mostly rounding noise.
SOFTMAX_VJP_FALSE_ALARMS = {
    "float32_double_softmax_uniform_targets": Spec(
        (3, 6, 1, 16, 7), ("identity", "relu", "sigmoid", "softmax"), "bce", dtype="float32"),
    "float32_softmax_bce_zero_targets": Spec(
        (1, 1, 1, 14, 15), ("sigmoid", "tanh", "tanh", "softmax"), "bce", "mean", dtype="float32"),
}


@pytest.mark.parametrize("draw", list(SOFTMAX_VJP_FALSE_ALARMS))
def test_a_correct_float32_rule_on_a_cancelling_softmax_vjp_is_not_differs(draw):
    arrays = np.load(Path(__file__).parent / "data" / f"{draw}.npz")
    spec = SOFTMAX_VJP_FALSE_ALARMS[draw]
    params = {name: arrays[name] for name in param_shapes(spec)}
    problem = Problem(spec, params, arrays["X"], arrays["Y"], float(arrays["lr"]))
    report = compare_rule(RULES["derived"], problem, ask_witnesses(problem, finite_differences=False))
    assert report.verdict != DIFFERS


@pytest.mark.parametrize("make", [zero_by_cancellation_float32_bce_logits,
                                  zero_by_cancellation_float64_softmax_ce,
                                  zero_by_cancellation_float64_labels,
                                  zero_by_cancellation_float64_labels_with_penalty,
                                  zero_by_cancellation_float32_bce_logits_with_penalty])
def test_a_gradient_zero_by_cancellation_is_never_differs(make):
    problem = make()
    truth = ask_witnesses(problem, finite_differences=False)
    exact = truth.gradients["torch"]
    data = data_gradients(problem.spec, problem.in_float64().params, exact)
    zero = [name for name, g in data.items() if not np.any(g)]
    assert zero, "the float64 data gradient should be exactly zero for some parameter"
    # Whether the rule's own rounding leaves noise on those zeros depends on the BLAS kernel:
    # OpenBLAS's SkylakeX kernels leave some, its Haswell kernels cancel exactly (as torch does);
    # the verdict must be INCONCLUSIVE either way.
    report = compare_rule(RULES["derived"], problem, truth)
    assert report.verdict == INCONCLUSIVE, [(r.parameter, r.witness, r.verdict) for r in report.rows]


def test_the_sensitivity_reruns_perturb_the_backward_pass():
    """Equal rows of W7 make W7ᵀδ7 exactly 0, and forward perturbations (seeded) keep the part
    of it that flows down to W4 cancelled: only reruns that perturb δ7 itself show the rounding
    noise a correct rule leaves below it."""
    problem = zero_by_cancellation_float64_labels_with_penalty()
    bias_column = -1  # ∂L/∂b4 = δ4, which the penalty leaves alone
    assert not np.any(torch_ref.gradients(*problem.arrays())["W4"][:, bias_column])
    runs = torch_ref.perturbed_gradients(*problem.arrays(), rerun_perturbation("float64"),
                                         SENSITIVITY_RUNS)
    assert any(np.any(run["W4"][:, bias_column]) for run in runs)


def test_a_structural_zero_is_still_compared_exactly():
    """Zero inputs make ∂L/∂W1 zero with S = 0 as well: a rule that puts anything there differs."""
    spec = Spec((2, 3, 2), ("tanh", "sigmoid"), "half-sse", bias="vector")
    rng = np.random.default_rng(0)
    params = {"W1": rng.normal(size=(3, 2)), "b1": rng.normal(size=3), "W2": rng.normal(size=(2, 3)),
              "b2": rng.normal(size=2)}
    problem = Problem(spec, params, np.zeros((2, 4)), rng.uniform(size=(2, 4)), 0.1)

    def nudged(spec, params, X, Y, lr):
        grads = network.gradients(spec, params, X, Y)
        return {**grads, "W1": grads["W1"] + 1e-30}

    def nudged_step(spec, params, X, Y, lr):
        return {k: params[k] - lr * g for k, g in nudged(spec, params, X, Y, lr).items()}

    truth = ask_witnesses(problem, finite_differences=False)
    assert not np.any(truth.gradients["torch"]["W1"])
    assert compare_rule(RULES["derived"], problem, truth).verdict == AGREES
    wrong = UpdateRule("nudged", "W1 off by 1e-30", True, nudged, nudged_step)
    assert compare_rule(wrong, problem, truth).verdict == DIFFERS


@pytest.mark.parametrize("weight", [40.0, 100.0])
def test_a_correct_rule_at_a_saturated_zero_is_inconclusive_not_differs(weight):
    """At |z| ≳ 37 the frameworks take σ′ = σ(1 − σ) = 0 in float64 while the derived rule keeps
    σ(z)·σ(−z) = e^{−|z|}: the truth's zero is its own rounding, so nothing can be judged."""
    spec = Spec((1, 1), ("sigmoid",), "half-sse")
    problem = Problem(spec, {"W1": np.array([[weight, 0.0]])}, np.ones((1, 1)), np.zeros((1, 1)), 0.1)
    truth = ask_witnesses(problem)
    assert not np.any(truth.gradients["torch"]["W1"])
    assert np.all(network.gradients(spec, problem.params, problem.X, problem.Y)["W1"] > 0)
    report = compare_rule(RULES["derived"], problem, truth)
    assert report.verdict == INCONCLUSIVE and "saturated" in report.saturation


def test_a_network_where_nothing_flows_back_is_inconclusive_for_right_and_wrong_rules():
    """Every output relu dead on every sample: every data gradient is exactly 0, for the derived
    rule and for its sign flip alike, so neither may agree; the reason names the dead layer. One
    live output unit is enough for the exact comparison to count again."""
    spec = Spec((2, 3, 2), ("tanh", "relu"), "half-sse", bias="vector")
    rng = np.random.default_rng(1)
    params = {"W1": rng.normal(size=(3, 2)), "b1": rng.normal(size=3), "W2": rng.normal(size=(2, 3)) * 0.1,
              "b2": np.array([-5.0, -5.0])}
    problem = Problem(spec, params, rng.uniform(-1, 1, (2, 4)), rng.uniform(size=(2, 4)), 0.1)
    truth = ask_witnesses(problem, finite_differences=False)
    assert not any(np.any(g) for g in truth.gradients["torch"].values())
    for rule in (RULES["derived"], SIGN_FLIP):
        report = compare_rule(rule, problem, truth)
        assert report.verdict == INCONCLUSIVE, rule.name
        assert "nothing flows back: every unit of layer 2 (relu) is dead" in report.saturation
    live = Problem(spec, {**params, "b2": np.array([-5.0, 5.0])}, problem.X, problem.Y, 0.1)
    live_truth = ask_witnesses(live, finite_differences=False)
    assert live_truth.saturation == "" and compare_rule(RULES["derived"], live, live_truth).verdict == AGREES
    assert compare_rule(SIGN_FLIP, live, live_truth).verdict == DIFFERS


def test_with_a_penalty_a_dead_network_is_still_inconclusive_and_a_wrong_penalty_differs():
    """λ > 0 puts λθ in every weight's gradient, which a rule's backward pass has no part in:
    agreeing on it settles nothing, but getting it wrong still shows."""
    spec = Spec((2, 3, 2), ("tanh", "relu"), "half-sse", l2=0.25)  # bias node: λ on every W
    rng = np.random.default_rng(1)
    W2 = np.concatenate([rng.normal(size=(2, 3)) * 0.1, [[-5.0], [-5.0]]], axis=1)
    problem = Problem(spec, {"W1": rng.normal(size=(3, 3)), "W2": W2}, rng.uniform(-1, 1, (2, 4)),
                      rng.uniform(size=(2, 4)), 0.1)
    truth = ask_witnesses(problem, finite_differences=False)
    assert not truth.flows_back and not truth.conclusive()
    assert all(np.any(g) for g in truth.gradients["torch"].values())  # λθ, nothing else
    assert compare_rule(RULES["derived"], problem, truth).verdict == INCONCLUSIVE

    def double_penalty(spec, params, X, Y, lr):
        return {k: g + spec.l2 * params[k] for k, g in network.gradients(spec, params, X, Y).items()}

    def double_penalty_step(spec, params, X, Y, lr):
        return {k: params[k] - lr * g for k, g in double_penalty(spec, params, X, Y, lr).items()}

    wrong = UpdateRule("2λ", "the penalty counted twice", True, double_penalty, double_penalty_step)
    assert compare_rule(wrong, problem, truth).verdict == DIFFERS


def test_the_report_on_a_dead_network_exits_three_and_says_why():
    argv = ["--layers", "4,8,3", "--activations", "tanh,relu", "--bias", "vector", "--layout", "rows",
            "--reduction", "mean", "--rules", "derived"]
    out = run_cli(argv, EXIT_INCONCLUSIVE)  # iris at seed 0 leaves every output relu dead
    assert "derived: inconclusive on" in out and "nothing flows back" in out
    assert "right and wrong rules give the same zeros — try other data or weights" in out


def test_a_row_judges_its_finite_entries_and_an_answer_that_is_not_finite_differs():
    """Entries with an infinite allowance (or truth) are not judged; the rest still are, and a
    non-finite answer where the truth is finite differs whatever its allowance."""
    from bpcheck.core.compare import row_verdict

    truth, allowed = np.array([0.0, 1.0]), np.array([np.inf, 1e-12])
    assert row_verdict(np.array([0.0, 1.5]), truth, allowed, 0.0)[0] == DIFFERS
    assert row_verdict(np.array([np.nan, 1.0]), truth, allowed, 0.0)[0] == DIFFERS
    assert row_verdict(np.array([5.0, 1.0]), truth, allowed, 0.0) == (INCONCLUSIVE, 1e-12)


FINITE = st.floats(-1e3, 1e3)
ANY = st.one_of(FINITE, st.sampled_from([0.0, -0.0, 1e-300, 1e308, np.inf, -np.inf, np.nan]))
SMALL = st.floats(-1e-6, 1e-6)  # near the reference, within a small allowance


@given(st.data())
def test_a_row_from_shared_reductions_is_the_row_from_each_apart(data):
    """``judged`` (one pass of reductions for the verdict and the error) gives what
    ``row_verdict`` and ``discrepancy`` give apart, bit for bit: finite entries (its own path)
    or not, zeros, an empty row, a scale of its own."""
    from bpcheck.core.compare import judged, row_verdict
    from bpcheck.core.metrics import discrepancy

    shape = data.draw(st.sampled_from([(0,), (1,), (4,), (2, 3)]))
    elements = data.draw(st.sampled_from([FINITE, ANY]))
    draw = lambda values: data.draw(hnp.arrays(np.float64, shape, elements=values))  # noqa: E731
    reference = draw(elements)
    candidate = data.draw(st.sampled_from([draw(ANY), reference + draw(SMALL), reference.copy()]))
    allowed = np.abs(data.draw(st.sampled_from([draw(elements), draw(SMALL)])))
    scale = data.draw(st.sampled_from([None, np.abs(reference), draw(elements), np.zeros(shape)]))
    floor, saturated = data.draw(st.sampled_from([0.0, 1e-300, 1e-3])), data.draw(st.booleans())
    with np.errstate(all="ignore"):  # inf − inf in the error apart, as ever
        verdict, tolerance, error = judged(candidate, reference, allowed, floor, saturated, scale)
        apart = row_verdict(candidate, reference, allowed, floor, saturated, scale)
        expected = discrepancy(candidate, reference)
    assert verdict == apart[0]
    np.testing.assert_array_equal([tolerance, *astuple(error)[:1], *astuple(error)[2:]],
                                  [apart[1], *astuple(expected)[:1], *astuple(expected)[2:]])
    assert error.where == expected.where


@pytest.mark.parametrize("mixing", [0, 1, 2])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_reruns_factors_drawn_at_once_are_those_drawn_array_by_array(mixing, dtype):
    """``torch_ref.copies`` draws every sign in one call: the same factors as one draw per array
    in turn (then one per softmax layer), which a cut of the generator's stream must give."""
    shapes, runs, rho = [(3, 2), (5,), (4, 1), (7, 3)], SENSITIVITY_RUNS, rerun_perturbation(dtype)
    extra, n = runs if mixing else 0, shapes[-1][0]
    rng, expected = np.random.default_rng(5), []
    for shape in shapes:
        signs = rng.integers(0, 2, size=(runs, *shape)) * 2.0 - 1.0
        expected.append(np.concatenate([1.0 + rho * signs, np.ones((extra, *shape))]))
    for _ in range(mixing):
        signs = rng.integers(0, 2, size=(extra, n, 1)) * 2.0 - 1.0
        expected.append(np.concatenate([np.zeros((runs, n, 1)), rho * signs]))
    got = torch_ref.copies(np.random.default_rng(5), rho, runs, extra, shapes, mixing)
    assert len(got) == len(expected)
    for found, wanted in zip(got, expected, strict=True):
        np.testing.assert_array_equal(found, wanted, strict=True)
