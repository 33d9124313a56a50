"""The strategies themselves: what they draw is valid, bounded, and reaches the whole family."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpcheck.core.tolerances import unit_roundoff
from bpcheck.mlp.strategies import (
    INPUT_BOUND,
    KINK_MARGIN_ABSOLUTE,
    MAX_HIDDEN_LAYERS,
    MAX_MLP_BATCH,
    MAX_WIDTH,
    away_from_kinks,
    clear_of_kinks,
    problems,
    specs,
    weight_bound,
)
from manual.spec import ACTIVATIONS, LOSSES, Spec, check_problem, parse_activation, target_kind
from tests.assertions import describe_problem


@given(problem=problems())
def test_problems_are_valid_and_bounded(problem):
    spec = problem.spec
    check_problem(spec, problem.params, problem.X, problem.Y)  # raises on anything invalid
    assert 1 <= spec.depth - 1 <= MAX_HIDDEN_LAYERS
    assert all(1 <= width <= MAX_WIDTH for width in spec.sizes)
    assert 1 <= problem.n_samples <= MAX_MLP_BATCH
    assert np.max(np.abs(problem.X)) <= INPUT_BOUND
    if target_kind(spec.loss) != "labels":
        assert -1 <= np.min(problem.Y) and np.max(problem.Y) <= 1
    for name, value in problem.params.items():
        # the bound, rounded once to float32
        assert np.max(np.abs(value)) <= weight_bound(spec, name) * (1 + 2 * unit_roundoff(np.float32)), name
    assert 1e-3 <= problem.lr <= 1


@given(problem=problems(specs(dtype="float32")))
def test_float32_problems_hold_float32_values(problem):
    floats = [problem.X, *problem.params.values()]
    if target_kind(problem.spec.loss) != "labels":
        floats.append(problem.Y)
    assert all(a.dtype == np.float32 for a in floats)


def test_specs_reach_every_name_convention_and_size_limit():
    seen = set()

    @settings(max_examples=400, database=None)
    @given(spec=specs())
    def collect(spec):
        seen.update({("bias", spec.bias), ("layout", spec.layout), ("loss", spec.loss),
                     ("reduction", spec.reduction), ("l2", spec.l2 > 0), ("depth", spec.depth)})
        seen.update(("act", parse_activation(a)[0]) for a in spec.activations)
        seen.update(("width", w) for w in spec.sizes if w in (1, MAX_WIDTH))

    collect()
    expected = {("bias", "node"), ("bias", "vector"), ("layout", "cols"), ("layout", "rows"),
                ("reduction", "sum"), ("reduction", "mean"), ("l2", True), ("l2", False),
                ("width", 1), ("width", MAX_WIDTH), ("depth", 2), ("depth", MAX_HIDDEN_LAYERS + 1)}
    expected |= {("act", name) for name in ACTIVATIONS} | {("loss", name) for name in LOSSES}
    assert expected <= seen, f"never drawn: {expected - seen}"


@given(spec=specs(include="softmax"))
def test_included_output_only_activation_lands_on_the_output(spec):
    assert spec.activations[-1] == "softmax"


KINKED = [name for name, record in ACTIVATIONS.items() if record.kinks]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@given(data=st.data())
def test_problems_keep_clear_of_kinks_by_construction(dtype, data):
    """Every drawn pre-activation keeps KINK_MARGIN_ABSOLUTE from its kinks, with no draw rejected: the
    construction fails only where a unit's N·K forbidden intervals, 0.0225 wide, cover its whole
    bias range (≥ 2/√17 wide; the built-in kinks, one per activation, cover 0.2 at most)."""
    activation = data.draw(st.sampled_from(KINKED))
    problem = data.draw(problems(specs(include=activation, dtype=dtype)))
    assert away_from_kinks(problem), describe_problem(problem)


def test_clear_of_kinks_moves_a_bias_by_the_smallest_shift_and_leaves_the_input_unchanged():
    spec = Spec((1, 1, 1), ("relu", "identity"), "half-sse", "sum", "vector", "rows")
    params = {"W1": np.array([[0.5]]), "b1": np.array([-0.498]), "W2": np.array([[0.3]]),
              "b2": np.array([0.0])}
    X = np.array([[1.0], [1.004]])  # z = 0.002 and 0.004: both too near relu's kink at 0
    cleared = clear_of_kinks(spec, params, X)
    assert params["b1"][0] == -0.498 and X[1, 0] == 1.004  # the caller's arrays are untouched
    # the smallest move: up until z = 0.002 is 1.25·KINK_MARGIN_ABSOLUTE (down would take 0.004 + 0.0125)
    assert cleared["b1"][0] == pytest.approx(-0.498 - 0.002 + 1.25 * KINK_MARGIN_ABSOLUTE)
    assert cleared["W1"] is not params["W1"] and np.array_equal(cleared["W2"], params["W2"])


def test_clear_of_kinks_leaves_a_float32_bias_at_its_bound_and_moves_a_unit_on_the_kink_live():
    spec = Spec((5, 2, 1), ("relu", "identity"), "half-sse", "sum", "vector", "rows", dtype="float32")
    bound = np.float32(weight_bound(spec, "b1"))  # rounded up past the float64 bound for fan-in 5
    params = {"W1": np.zeros((2, 5), np.float32), "b1": np.array([bound, 0.0], np.float32),
              "W2": np.zeros((1, 2), np.float32), "b2": np.zeros(1, np.float32)}
    cleared = clear_of_kinks(spec, params, np.ones((3, 5), np.float32))
    assert cleared["b1"][0] == bound  # z = bound, far from the kink: not moved
    assert cleared["b1"][1] == np.float32(1.25 * KINK_MARGIN_ABSOLUTE)  # z = 0 exactly: moved up, live


def test_clear_of_kinks_handles_many_declared_kinks_in_memory_linear_in_their_number():
    kinks = np.sort(np.random.default_rng(0).uniform(-3, 3, 500))
    values = np.linspace(-4, 4, 1001)
    from bpcheck.mlp.strategies import _distance_to

    assert np.array_equal(_distance_to(kinks, values), np.min(np.abs(values[:, None] - kinks), axis=1))
