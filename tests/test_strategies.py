"""The strategies themselves: what they draw stays within the documented bounds and is valid."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from manual.spec import check_problem
from tests.strategies import INPUT_BOUND, MAX_BATCH, MAX_WIDTH, problems, specs, weight_bound


@given(problem=problems())
def test_problems_are_valid_and_bounded(problem):
    spec = problem.spec
    check_problem(spec, problem.params, problem.X, problem.Y)  # raises on anything invalid
    assert all(1 <= width <= MAX_WIDTH for width in spec.sizes)
    assert 1 <= problem.n_samples <= MAX_BATCH
    assert np.max(np.abs(problem.X)) <= INPUT_BOUND
    assert 0 <= np.min(problem.Y) and np.max(problem.Y) <= 1
    for name, value in problem.params.items():
        assert np.max(np.abs(value)) <= weight_bound(spec, name) * (1 + 1e-7), name
    assert 1e-3 <= problem.lr <= 1


@given(problem=problems(specs(dtype="float32")))
def test_float32_problems_hold_float32_values(problem):
    arrays = [problem.X, problem.Y, *problem.params.values()]
    assert all(a.dtype == np.float32 for a in arrays)


def test_specs_reach_every_convention_and_the_size_limits():
    seen = set()

    @settings(max_examples=300, database=None)
    @given(spec=specs())
    def collect(spec):
        seen.update({("bias", spec.bias), ("layout", spec.layout), *(("act", a) for a in spec.activations)})
        seen.update(("width", w) for w in spec.sizes if w in (1, MAX_WIDTH))

    collect()
    expected = {("bias", "node"), ("bias", "vector"), ("layout", "cols"), ("layout", "rows"),
                ("act", "sigmoid"), ("act", "tanh"), ("act", "relu"), ("width", 1), ("width", MAX_WIDTH)}
    assert expected <= seen, f"never drawn: {expected - seen}"
