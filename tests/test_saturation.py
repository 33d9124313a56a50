"""One saturated unit bounds its own rounding (``bpcheck.mlp.allowances.saturated_paths_bound``,
``bpcheck.layers.allowances.saturated_paths_traced``): a sign flip on a network with a unit at
|z| = 15–60 differs, the derived rule is no false alarm there, and every inconclusive
verdict names its reason."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from bpcheck.core.tolerances import OUTPUT_FORM_LIMIT, unit_roundoff
from bpcheck.core.verdicts import AGREES, DIFFERS, INCONCLUSIVE
from bpcheck.layers.compare import DERIVED, StackRule, compare_stack
from bpcheck.layers.problem import random_problem
from bpcheck.layers.strategies import networks, stack_problems
from bpcheck.mlp.compare import ask_witnesses, compare_rule
from bpcheck.mlp.mutants import MUTANTS
from bpcheck.mlp.problem import Problem
from bpcheck.mlp.strategies import problems, specs
from manual import activations
from manual.rules import RULES
from manual.spec import ACTIVATIONS, Spec
from manual.stack import Stack
from tests.assertions import describe_problem
from tests.saturated import saturated, saturated_problems

SIGN_FLIP = MUTANTS["sign-flip"].rule()
EXACT = {"tanh": activations.tanh_derivative, "sigmoid": activations.sigmoid_derivative}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(EXACT))
def test_sigma_prime_from_a_rounded_output_is_off_by_at_most_its_bound(name, dtype):
    """The bound the allowances rest on: σ′ from σ computed in ``dtype`` is off by at most
    |σ′|·min(u·κ, 4) for each rounding of σ (NumPy's float64 σ is within an ulp, 2u, not u: the
    allowances take R = 4 roundings of it), and κ·|σ′| ≤ the record's derivative bound."""
    record, u = ACTIVATIONS[name], unit_roundoff(dtype)
    tails = np.geomspace(1e-6, 60, 2000)
    z = np.concatenate([np.linspace(-60, 60, 24001), -tails, tails])
    exact = EXACT[name](z, getattr(activations, name)(z))
    rounded = getattr(activations, name)(z).astype(dtype).astype(np.float64)
    error = np.abs(record.derivative_from_output(rounded) - exact)
    kappa = record.output_form_condition(z)
    bound = exact * np.minimum(2 * u * kappa, OUTPUT_FORM_LIMIT) + 4 * u * exact  # and σ′'s own rounding
    assert np.all(error <= bound), z[np.argmax(error - bound)]
    assert np.all(kappa * exact <= record.derivative_bound * (1 + 1e-12))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_a_sign_flip_with_one_saturated_unit_differs_and_the_derived_rule_agrees(activation, dtype):
    """A weight row scaled so that z ≈ 15–45 on unit 1: before, κ_out ≈ 10³³ widened every
    allowance and both rules were inconclusive; now only what that unit feeds is widened, by
    what it can carry."""
    spec = Spec((3, 4, 2), (activation, "sigmoid"), "half-sse", bias="vector", dtype=dtype)
    rng = np.random.default_rng(0)
    params = {"W1": rng.normal(size=(4, 3)), "b1": rng.normal(size=4) * 0.1,
              "W2": rng.normal(size=(2, 4)), "b2": rng.normal(size=2) * 0.1}
    params["W1"][1] = 10.0  # z = 10·Σx ∈ [15, 45]
    problem = Problem(spec, {k: v.astype(dtype) for k, v in params.items()},
                      rng.uniform(0.5, 1.5, (3, 5)).astype(dtype),
                      rng.uniform(size=(2, 5)).astype(dtype), 0.1)
    truth = ask_witnesses(problem, finite_differences=False)
    assert "layer 1" in truth.saturation and "is saturated at unit 1" in truth.saturation
    assert compare_rule(RULES["derived"], problem, truth).verdict == AGREES
    flipped = compare_rule(SIGN_FLIP, problem, truth)
    assert flipped.verdict == DIFFERS
    assert {row.parameter for row in flipped.rows if row.differs} == set(params)


@settings(max_examples=60)
@given(problem=saturated_problems(largest_z=60.0))
def test_with_a_saturated_unit_the_derived_rule_is_no_false_alarm_and_its_sign_flip_is_caught(problem):
    note(describe_problem(problem))
    truth = ask_witnesses(problem, finite_differences=False)
    derived = compare_rule(RULES["derived"], problem, truth)
    assert derived.verdict != DIFFERS, [row for row in derived.rows if row.differs]
    assert derived.verdict != INCONCLUSIVE or derived.saturation
    if derived.verdict == AGREES:  # every gradient settled: its negation cannot be rounding
        assert compare_rule(SIGN_FLIP, problem, truth).verdict == DIFFERS


def test_most_saturated_draws_are_judged():
    """Over 40 fixed networks with one unit at |z| ∈ [15, 60], the derived rule agrees on most
    and is never a false alarm; wherever it agrees, the sign flip differs."""
    judged = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        dtype, activation = ("float64", "float32")[seed % 2], ("tanh", "sigmoid")[seed // 2 % 2]
        spec = Spec((3, 5, 2), (activation, "tanh"), "half-sse", bias="vector", dtype=dtype)
        params = {"W1": rng.normal(size=(5, 3)), "b1": rng.normal(size=5),
                  "W2": rng.normal(size=(2, 5)), "b2": rng.normal(size=2)}
        base = Problem(spec, {k: v.astype(dtype) for k, v in params.items()},
                       rng.normal(size=(3, 4)).astype(dtype),
                       rng.uniform(-0.5, 0.5, (2, 4)).astype(dtype), 0.1)
        problem = saturated(base, int(rng.integers(5)), float(rng.uniform(15, 60) * rng.choice([-1, 1])))
        truth = ask_witnesses(problem, finite_differences=False)
        verdict = compare_rule(RULES["derived"], problem, truth).verdict
        assert verdict != DIFFERS, seed
        judged += verdict == AGREES
        assert verdict != AGREES or compare_rule(SIGN_FLIP, problem, truth).verdict == DIFFERS, seed
    assert judged >= 36, judged  # all 40 measured (none before)


@dataclass(frozen=True)
class Flipped(StackRule):
    """The derived layers with every gradient negated (and its step taken with it)."""

    def evaluate(self, problem):
        grads, _, running = super().evaluate(problem)
        flipped = {name: -g for name, g in grads.items()}
        stepped = {name: problem.params[name] - problem.lr * flipped[name] for name in problem.params}
        return flipped, stepped, running


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_sign_flip_on_a_network_of_layers_with_one_saturated_unit_differs(dtype):
    """dense1's unit 1 at z = 30 on every sample: before, κ_out ≈ 10²⁶ left dense1 and x
    inconclusive for every rule; now the derived rule agrees and the flip differs on them."""
    stack = Stack("dense:4;tanh;dense:3", (3,), dtype=dtype)
    problem = random_problem(stack, 4, seed=0)
    problem.params["dense1.W"][1] = 0.0
    problem.params["dense1.b"][1] = 30.0
    (derived, flipped), _, truth = compare_stack(problem, [DERIVED, Flipped("sign flip", "negated")])
    assert truth.saturation.startswith("tanh1 (tanh) is saturated")
    assert derived.verdict == AGREES, [(r.parameter, r.witness) for r in derived.rows if not r.agrees]
    assert flipped.verdict == DIFFERS
    assert {row.parameter for row in flipped.rows if row.differs} >= {"dense1.W", "dense1.b", "x"}


def test_the_issue_example_in_float32_names_its_reason():
    """The issue's example: inconclusive with an empty reason before (its allowance, 5e−2 of the
    gradient, is wider than 1e−3); now the reason names the parameters and their allowance."""
    from bpcheck.layers.problem import random_problem as draw
    stack = Stack("conv2d:2,k2,s2;relu;max_pool2d:k2;layer_norm;flatten;dense:4", (1, 5, 4),
                  loss="softmax-ce-labels", reduction="sum", dtype="float32")
    reasons = []
    for seed in range(6):
        (report,), _, _ = compare_stack(draw(stack, 3, seed=seed))
        if report.verdict == INCONCLUSIVE:
            reasons.append(report.saturation)
    assert reasons and all("allowance is" in reason for reason in reasons), reasons


@settings(max_examples=20)
@given(data=st.data())
def test_every_inconclusive_verdict_on_a_network_of_layers_names_its_reason(data):
    dtype = data.draw(st.sampled_from(["float64", "float32"]))
    problem = data.draw(stack_problems(data.draw(networks(dtype))))
    (report,), _, _ = compare_stack(problem, finite_differences=False)
    assert report.verdict != INCONCLUSIVE or report.saturation.strip(), problem.stack.describe()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@settings(max_examples=40)
@given(data=st.data())
def test_every_inconclusive_verdict_on_an_mlp_names_its_reason(dtype, data):
    problem = data.draw(problems(specs(dtype=dtype)))
    report = compare_rule(RULES["derived"], problem, ask_witnesses(problem, finite_differences=False))
    assert report.verdict != INCONCLUSIVE or report.saturation.strip(), describe_problem(problem)


@settings(max_examples=20)
@given(dtype=st.sampled_from(["float64", "float32"]), activation=st.sampled_from(["tanh", "sigmoid"]),
       width=st.integers(1, 5), n=st.integers(1, 5), seed=st.integers(0, 2**16),
       z=st.floats(15.0, 60.0), sign=st.sampled_from([-1.0, 1.0]), data=st.data())
def test_a_network_of_layers_with_a_saturated_unit_raises_no_false_alarm(dtype, activation, width, n, seed,
                                                                          z, sign, data):
    stack = Stack(f"dense:{width};{activation};dense:3", (3,), dtype=dtype)
    problem = random_problem(stack, n, seed=seed)
    unit = data.draw(st.integers(0, width - 1))
    problem.params["dense1.W"][unit] = 0.0
    problem.params["dense1.b"][unit] = sign * z
    (derived, flipped), _, _ = compare_stack(problem, [DERIVED, Flipped("sign flip", "negated")],
                                             finite_differences=False)
    assert derived.verdict != DIFFERS, [(r.parameter, r.witness) for r in derived.rows if r.differs]
    assert derived.verdict != INCONCLUSIVE or derived.saturation
    if derived.verdict == AGREES:
        assert flipped.verdict == DIFFERS
