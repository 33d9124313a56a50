"""The derived rule agrees with PyTorch, JAX and finite differences, in float64 and float32."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, note
from hypothesis import strategies as st

from manual.rules import RULES
from reference import numeric
from study.compare import ask_witnesses, compare_rule, compare_witnesses
from study.tolerances import informative
from tests.assertions import assert_rows_agree, describe_problem
from tests.strategies import ACTIVATION_PAIRS, problems, specs

#: Keep relu pre-activations this far from 0: finite differences step ≲ 1e−5, float32 rounds z
#: by ≲ 1e−5, and XLA flushes subnormals to zero — any of these can move z across the kink.
KINK_MARGIN = 1e-2

pairs = pytest.mark.parametrize("activations", ACTIVATION_PAIRS, ids="-".join)


def derived_rows(problem, witnesses, quantity):
    assume(away_from_kinks(problem))
    truth = ask_witnesses(problem)
    assume(informative(problem.spec, problem.n_samples, problem.spec.dtype, truth.conditioning))
    report = compare_rule(RULES["derived"], problem, truth)
    return [row for row in report.rows if row.witness in witnesses and row.quantity == quantity]


def away_from_kinks(problem) -> bool:
    """True when every relu pre-activation is at least KINK_MARGIN from 0."""
    p = problem.in_float64()
    zs = numeric.preactivations(p.spec, p.params, p.X)
    return all(np.min(np.abs(z)) >= KINK_MARGIN
               for z, name in zip(zs, p.spec.activations, strict=True) if name == "relu")


@pairs
@given(data=st.data())
def test_derived_gradient_matches_torch_and_jax(activations, data):
    problem = data.draw(problems(specs(activations)))
    note(describe_problem(problem))
    assert_rows_agree(derived_rows(problem, ("torch", "jax"), "gradient"), problem)


@pairs
@given(data=st.data())
def test_derived_gradient_matches_finite_differences(activations, data):
    problem = data.draw(problems(specs(activations)))
    note(describe_problem(problem))
    assert_rows_agree(derived_rows(problem, ("numeric",), "gradient"), problem)


@pairs
@given(data=st.data())
def test_derived_sgd_step_matches_torch_optim_sgd_and_optax_sgd(activations, data):
    problem = data.draw(problems(specs(activations)))
    note(describe_problem(problem))
    assert_rows_agree(derived_rows(problem, ("torch", "jax"), "update"), problem)


@pairs
@given(data=st.data())
def test_derived_rule_in_float32_matches_float64_truth(activations, data):
    problem = data.draw(problems(specs(activations, dtype="float32")))
    note(describe_problem(problem))
    rows = derived_rows(problem, ("torch", "jax"), "gradient")
    rows += derived_rows(problem, ("torch", "jax"), "update")
    assert_rows_agree(rows, problem)


@given(problem=problems(specs(reduction="mean")))
def test_mean_reduction_gradient_matches_witnesses(problem):
    assert_rows_agree(derived_rows(problem, ("torch", "jax"), "gradient"), problem)


@given(problem=problems())
def test_witnesses_agree_among_themselves(problem):
    assume(away_from_kinks(problem))
    assert_rows_agree(compare_witnesses(problem, ask_witnesses(problem)), problem)
