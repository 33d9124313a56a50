"""The family convention ``l2_biases``: the L2 penalty λ/2 Σ‖·‖² covers the biases too.

The derived rule, each witness, the allowances, the mutants, the diagnosis and the command
all read it; these tests check them against one another and against the convention's own
arithmetic (the gradient gains exactly λ·bias, the loss λ/2‖b‖²).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import assume, find, given, note, settings
from hypothesis import strategies as st

from bpcheck.cli.render import describe_problem as render_problem
from bpcheck.core.datasets import random_data
from bpcheck.core.projected import ALONG
from bpcheck.core.verdicts import AGREES, INCONCLUSIVE
from bpcheck.mlp import diagnose as diagnosis
from bpcheck.mlp.compare import ask_witnesses, compare_rule
from bpcheck.mlp.mutants import MUTANTS, Knobs, mutated_directions
from bpcheck.mlp.problem import Problem
from bpcheck.mlp.strategies import away_from_kinks, problems, specs
from manual import network
from manual.initialisers import truncated_normal
from manual.rules import RULES
from manual.spec import BIAS_STYLES, LAYOUTS, Spec
from reference import jax_ref, numeric, torch_ref
from tests.assertions import describe_problem, run_cli

L2 = 0.25
STYLES = pytest.mark.parametrize(("bias", "layout"), list(itertools.product(BIAS_STYLES, LAYOUTS)))


def fixed_problem(bias: str, layout: str, l2_biases: bool = True, dtype: str = "float64",
                  sizes: tuple[int, ...] = (3, 4, 2), seed: int = 3) -> Problem:
    """A small tanh–sigmoid network with a penalty, random data (N = 5)."""
    activations = ("tanh",) * (len(sizes) - 2) + ("sigmoid",)
    spec = Spec(sizes, activations, "half-sse", "sum", bias, layout, dtype, L2, l2_biases)
    rng = np.random.default_rng(seed)
    X, Y = random_data(spec, 5, rng)
    params = truncated_normal(spec, rng)
    return Problem(spec, params, X, Y, 0.1)


def biases(spec: Spec, params: dict) -> dict[str, np.ndarray]:
    """Each layer's bias, keyed by the parameter that holds it: b_k, or W_k's last column."""
    if spec.bias == "vector":
        return {f"b{k}": np.asarray(params[f"b{k}"]) for k in range(1, spec.depth + 1)}
    return {f"W{k}": np.asarray(params[f"W{k}"])[:, -1] for k in range(1, spec.depth + 1)}


def bias_entries(spec: Spec, grads: dict, name: str) -> np.ndarray:
    return grads[name] if spec.bias == "vector" else grads[name][:, -1]


def non_bias_entries(spec: Spec, grads: dict, name: str) -> np.ndarray:
    return np.empty(0) if spec.bias == "vector" else grads[name][:, :-1]


# (1) the derived rule agrees with every witness ------------------------------------------------

@STYLES
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_derived_rule_agrees_with_every_witness_on_fixed_networks(bias, layout, dtype):
    problem = fixed_problem(bias, layout, dtype=dtype, sizes=(3, 4, 3, 2))
    report = compare_rule(RULES["derived"], problem, ask_witnesses(problem))
    assert report.verdict == AGREES, describe_problem(problem)
    assert {row.witness for row in report.rows if row.quantity == "gradient"} == {"torch", "jax"}
    assert {row.witness for row in report.rows if row.quantity == ALONG} == {"numeric"}


@STYLES
@settings(max_examples=8)
@given(data=st.data())
def test_derived_rule_agrees_with_every_witness_on_drawn_networks(bias, layout, data):
    problem = data.draw(problems(specs(bias=bias, layout=layout, l2=L2, l2_biases=True,
                                       max_hidden_layers=2)))
    assume(away_from_kinks(problem))
    note(describe_problem(problem))
    report = compare_rule(RULES["derived"], problem, ask_witnesses(problem))
    rows = [row for row in report.rows if row.verdict != INCONCLUSIVE]
    assume(rows)
    assert all(row.agrees for row in rows), [row for row in rows if not row.agrees]


@STYLES
def test_the_padded_jax_witness_matches_its_plain_form_and_does_not_recompile(bias, layout):
    problem = fixed_problem(bias, layout, l2_biases=False)
    args = (problem.params, problem.X, problem.Y)
    jax_ref.gradients(problem.spec, *args)
    before = jax_ref.compile_count()
    spec = problem.spec.replace(l2_biases=True)
    padded, plain = jax_ref.gradients(spec, *args), jax_ref.plain_gradients(spec, *args)
    assert jax_ref.compile_count() == before  # the biases' λ is traced, not a compile key
    for name in plain:
        np.testing.assert_allclose(padded[name], plain[name], rtol=1e-13, atol=1e-15, err_msg=name)


# (2) the gradient gains exactly λ·bias -------------------------------------------------------

@settings(max_examples=25)
@given(data=st.data())
def test_the_gradient_gains_exactly_lambda_times_the_bias(data):
    dtype = data.draw(st.sampled_from(["float64", "float32"]))
    problem = data.draw(problems(specs(l2=L2, l2_biases=False, dtype=dtype, max_hidden_layers=2)))
    without = network.gradients(problem.spec, problem.params, problem.X, problem.Y)
    spec = problem.spec.replace(l2_biases=True)
    covered = network.gradients(spec, problem.params, problem.X, problem.Y)
    l2 = np.dtype(dtype).type(L2)
    for name, b in biases(spec, problem.params).items():
        np.testing.assert_array_equal(bias_entries(spec, covered, name),
                                      bias_entries(spec, without, name) + l2 * b, err_msg=name)
        np.testing.assert_array_equal(non_bias_entries(spec, covered, name),
                                      non_bias_entries(spec, without, name), err_msg=name)
    untouched = set(problem.params) - set(biases(spec, problem.params))
    for name in untouched:  # a vector style's weights
        np.testing.assert_array_equal(covered[name], without[name], err_msg=name)


@STYLES
def test_every_witness_gains_lambda_times_the_bias(bias, layout):
    problem = fixed_problem(bias, layout, l2_biases=False)
    spec = problem.spec.replace(l2_biases=True)
    args = (problem.params, problem.X, problem.Y)
    for witness in (torch_ref, jax_ref, numeric):
        without, covered = witness.gradients(problem.spec, *args), witness.gradients(spec, *args)
        rtol = 1e-6 if witness is numeric else 1e-12
        for name, b in biases(spec, problem.params).items():
            np.testing.assert_allclose(bias_entries(spec, covered, name) - bias_entries(spec, without, name),
                                       L2 * b, rtol=rtol, atol=rtol, err_msg=f"{witness.TITLE}: {name}")


# (3) the loss gains λ/2 ‖b‖² ------------------------------------------------------------------

@STYLES
def test_the_loss_gains_half_lambda_times_the_squared_biases(bias, layout):
    problem = fixed_problem(bias, layout, l2_biases=False)
    spec = problem.spec.replace(l2_biases=True)
    args = (problem.params, problem.X, problem.Y)
    expected = 0.5 * L2 * sum(float(np.sum(b * b)) for b in biases(spec, problem.params).values())
    assert expected > 0
    manual_gain = network.loss(spec, *args) - network.loss(problem.spec, *args)
    assert np.isclose(manual_gain, expected, rtol=1e-12, atol=1e-15)
    for witness in (torch_ref, jax_ref, numeric):
        gain = witness.loss(spec, *args) - witness.loss(problem.spec, *args)
        assert np.isclose(gain, expected, rtol=1e-12, atol=1e-15), witness.TITLE
        assert np.isclose(witness.loss(spec, *args), network.loss(spec, *args), rtol=1e-13), witness.TITLE


def test_the_loss_without_a_penalty_ignores_the_convention():
    problem = fixed_problem("vector", "rows", l2_biases=True)
    spec = problem.spec.replace(l2=0.0)
    args = (problem.params, problem.X, problem.Y)
    assert network.loss(spec, *args) == network.loss(spec.replace(l2_biases=False), *args)


# (4) the command ------------------------------------------------------------------------------

@pytest.mark.parametrize("options", [[], ["--bias", "vector", "--layout", "rows", "--layers", "3,5,2"]])
def test_the_command_takes_l2_biases_and_the_derived_rule_agrees(options):
    out = run_cli(["--l2", "0.25", "--l2-biases", *options], 0)
    assert "derived: agrees with every witness" in out


def test_the_problem_description_names_l2_biases_only_when_set():
    problem = fixed_problem("node", "cols", l2_biases=True)
    assert "l2=0.25 l2_biases=True bias=node layout=cols" in render_problem(problem)
    plain = Problem(problem.spec.replace(l2_biases=False), problem.params, problem.X, problem.Y, problem.lr)
    assert "l2=0.25 bias=node layout=cols" in render_problem(plain)
    assert "l2_biases" not in render_problem(plain)


@pytest.mark.parametrize("value", [1, 0, "yes", None, np.float64(1.0)])
def test_l2_biases_must_be_a_bool(value):
    with pytest.raises(TypeError, match=r"^l2_biases=.* must be a bool"):
        Spec((3, 2), ("sigmoid",), l2=L2, l2_biases=value)


def test_a_numpy_bool_is_taken_as_a_bool():
    spec = Spec((3, 2), ("sigmoid",), l2=L2, l2_biases=np.bool_(True))
    assert spec.l2_biases is True


# (5) the diagnosis ----------------------------------------------------------------------------

@pytest.mark.parametrize("bias", BIAS_STYLES)
def test_a_rule_that_penalises_the_biases_unasked_is_diagnosed(bias):
    problem = fixed_problem(bias, "cols", l2_biases=False, sizes=(3, 4, 4, 2))
    directions = network.gradients(problem.spec.replace(l2_biases=True), problem.params, problem.X, problem.Y)
    explanations = diagnosis.diagnose(directions, problem)
    assert explanations
    for e in explanations:
        assert e.hypotheses == ("the penalty applied to biases too",), e
        assert np.isclose(e.factor, 1.0)


@pytest.mark.parametrize("bias", BIAS_STYLES)
def test_a_rule_that_leaves_the_biases_unpenalised_is_diagnosed(bias):
    problem = fixed_problem(bias, "cols", l2_biases=True, sizes=(3, 4, 4, 2))
    directions = network.gradients(problem.spec.replace(l2_biases=False), problem.params, problem.X,
                                   problem.Y)
    explanations = diagnosis.diagnose(directions, problem)
    assert explanations
    for e in explanations:
        assert e.hypotheses == ("the penalty left off the biases",), e
        assert np.isclose(e.factor, 1.0)


def test_the_panel_offers_the_bias_hypothesis_the_spec_does_not_already_make():
    spec = Spec((3, 4, 2), ("tanh", "sigmoid"), l2=L2)
    names = {flag: [h for v in diagnosis.panel(spec.replace(l2_biases=flag)) for h in v.names]
             for flag in (False, True)}
    assert "the penalty applied to biases too" in names[False]
    assert "the penalty left off the biases" not in names[False]
    assert "the penalty left off the biases" in names[True]
    assert "the penalty applied to biases too" not in names[True]


# the mutants and the strategies ---------------------------------------------------------------

@STYLES
def test_the_penalty_knobs_still_differ_from_a_spec_that_covers_biases(bias, layout):
    problem = fixed_problem(bias, layout, l2_biases=True)
    spec, args = problem.spec, (problem.params, problem.X, problem.Y)
    missing = mutated_directions(Knobs(l2="missing"), spec, *args, problem.lr)
    flipped = mutated_directions(Knobs(l2="on_bias"), spec, *args, problem.lr)
    without_penalty = network.gradients(spec.replace(l2=0.0), *args)
    without_bias_term = network.gradients(spec.replace(l2_biases=False), *args)
    for name in problem.params:
        np.testing.assert_array_equal(missing[name], without_penalty[name], err_msg=name)
        np.testing.assert_array_equal(flipped[name], without_bias_term[name], err_msg=name)


@pytest.mark.parametrize("bias", BIAS_STYLES)
def test_the_missing_l2_mutant_is_diagnosed_when_the_penalty_covers_biases(bias):
    """Each parameter gets the most specific hypothesis that explains it: a bias vector's
    gradient lacks just the bias term, every weight (a bias node's included) the penalty."""
    problem = fixed_problem(bias, "cols", l2_biases=True, sizes=(3, 4, 4, 2))
    directions = MUTANTS["missing-l2"].rule().directions(problem.spec, problem.params, problem.X,
                                                           problem.Y, problem.lr)
    explanations = diagnosis.diagnose(directions, problem)
    assert {e.parameter for e in explanations} == set(problem.params)
    for e in explanations:
        expected = ("the penalty left off the biases" if e.parameter.startswith("b")
                    else "the penalty's gradient left out")
        assert e.hypotheses == (expected,), e


def test_specs_draw_l2_biases_only_with_a_penalty():
    settings_ = settings(database=None, max_examples=200)
    assert find(specs(l2=L2), lambda spec: spec.l2_biases, settings=settings_).l2_biases
    assert not find(specs(l2=L2), lambda spec: not spec.l2_biases, settings=settings_).l2_biases
    assert find(specs(l2=L2, l2_biases=True), lambda spec: True, settings=settings_).l2_biases


@settings(max_examples=20)
@given(spec=specs(l2=0.0))
def test_without_a_penalty_l2_biases_is_never_drawn(spec):
    assert spec.l2_biases is False
