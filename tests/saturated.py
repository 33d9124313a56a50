"""Networks with one saturated hidden unit, for the saturation and verdict tests."""

from __future__ import annotations

from hypothesis import strategies as st

from bpcheck.mlp.problem import Problem
from bpcheck.mlp.strategies import problems, specs


def saturated(problem: Problem, unit: int, z: float) -> Problem:
    """``problem`` with hidden unit ``unit`` of layer 1 at pre-activation ``z`` on every sample."""
    params = {name: value.copy() for name, value in problem.params.items()}
    params["W1"][unit] = 0.0
    params["b1"][unit] = z
    return Problem(problem.spec, params, problem.X, problem.Y, problem.lr)


@st.composite
def saturated_problems(draw, largest_z: float) -> Problem:
    """A sigmoid/tanh network (vector biases) with one hidden unit at |z| ∈ [15, largest_z] on
    every sample."""
    dtype = draw(st.sampled_from(["float64", "float32"]))
    hidden = draw(st.sampled_from(["sigmoid", "tanh"]))
    strategy = specs(activations=(hidden, draw(st.sampled_from(["sigmoid", "tanh", "identity"]))),
                     loss="half-sse", bias="vector", dtype=dtype)
    problem = draw(problems(strategy))
    unit = draw(st.integers(0, problem.spec.sizes[1] - 1))
    z = draw(st.floats(15.0, largest_z)) * draw(st.sampled_from([-1.0, 1.0]))
    return saturated(problem, unit, z)
