"""The derived rule agrees with PyTorch, JAX and finite differences across the MLP family.

Tests are parametrized from the vocabulary's records, so every registered name is drawn: every
activation × loss, 1–6 hidden layers, both bias styles, both layouts, both reductions, with and
without an L2 penalty, in float64 and float32.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

from bpcheck.core.projected import ALONG
from bpcheck.core.verdicts import INCONCLUSIVE
from bpcheck.core.witness_rows import compare_witnesses
from bpcheck.mlp.compare import ask_witnesses, compare_rule
from bpcheck.mlp.strategies import away_from_kinks, problems, seed_program_specs, specs
from manual import network
from manual.rules import RULES
from manual.spec import ACTIVATIONS, LOSSES
from reference import torch_ref
from tests.assertions import assert_rows_agree, describe_problem
from tests.seed_snippet import run_corrected_seed_code

by_activation = pytest.mark.parametrize("activation", list(ACTIVATIONS))


def derived_rows(problem, witnesses, quantities):
    """The derived rule's rows against the given witnesses, for a conclusive, kink-free draw."""
    assume(away_from_kinks(problem))
    truth = ask_witnesses(problem, finite_differences="numeric" in witnesses)
    note(describe_problem(problem))
    report = compare_rule(RULES["derived"], problem, truth)
    rows = [row for row in report.rows if row.witness in witnesses and row.quantity in quantities
            and row.verdict != INCONCLUSIVE]  # the verdicts' own definition (bpcheck.core.tolerances)
    assume(rows)
    return rows


#: Every pair of activation × loss; 50 draws each (2,100 in all), beside the 100 of each name
#: alone in the tests below. Each draw checks the SGD step too (``torch.optim.SGD``'s and
#: ``optax.sgd``'s), which the witnesses return with the gradient.
PAIR_EXAMPLES = 50


@pytest.mark.parametrize(("activation", "loss"), list(itertools.product(ACTIVATIONS, LOSSES)))
@settings(max_examples=PAIR_EXAMPLES)
@given(data=st.data())
def test_derived_gradient_and_sgd_step_match_torch_and_jax(activation, loss, data):
    problem = data.draw(problems(specs(include=activation, loss=loss)))
    assert_rows_agree(derived_rows(problem, ("torch", "jax"), ("gradient", "update")), problem)


@by_activation
@given(data=st.data())
def test_derived_gradient_matches_finite_differences(activation, data):
    problem = data.draw(problems(specs(include=activation)))
    assert_rows_agree(derived_rows(problem, ("numeric",), (ALONG,)), problem)


@settings(max_examples=20)
@given(problem=problems())
def test_torch_witness_step_is_the_torch_optim_sgd_objects_step(problem):
    """The witness steps by torch.optim's functional sgd: bit for bit what SGD.step computes."""
    p = problem.in_float64()
    grads, step = torch_ref.gradients_and_sgd_step(p.spec, p.params, p.X, p.Y, p.lr)
    leaves = torch_ref.as_leaves(p.params)
    for name, leaf in leaves.items():
        leaf.grad = torch.from_numpy(grads[name].copy())
    torch.optim.SGD(list(leaves.values()), lr=p.lr).step()
    for name, leaf in leaves.items():
        np.testing.assert_array_equal(step[name], leaf.detach().numpy(), err_msg=name)


@by_activation
@given(data=st.data())
def test_derived_rule_in_float32_matches_float64_truth(activation, data):
    problem = data.draw(problems(specs(include=activation, dtype="float32")))
    assert_rows_agree(derived_rows(problem, ("torch", "jax"), ("gradient", "update")), problem)


@given(problem=problems())
def test_witnesses_agree_among_themselves(problem):
    assume(away_from_kinks(problem))
    rows = [row for row in compare_witnesses(problem, ask_witnesses(problem))
            if row.verdict != INCONCLUSIVE]  # e.g. an exactly zero gradient against an estimate
    assume(rows)
    assert_rows_agree(rows, problem)


@given(problem=problems(seed_program_specs(("sigmoid", "sigmoid"), bias="node", layout="cols")))
def test_general_rule_reproduces_the_seed_three_layer_rule(problem):
    """The δ recursion, at depth 2, is the corrected three-layer code shown in the README."""
    W_h, W_o = run_corrected_seed_code(problem.params["W1"], problem.params["W2"], problem.X.T,
                                       problem.Y, problem.lr)
    step = network.sgd_step(problem.spec, problem.params, problem.X, problem.Y, problem.lr)
    truth = ask_witnesses(problem, finite_differences=False)
    for name, expected in (("W1", W_h), ("W2", W_o)):
        allowed = problem.lr * truth.allowance[name] + 1e-15 * np.abs(expected)
        assert np.all(np.abs(step[name] - expected) <= allowed), name
