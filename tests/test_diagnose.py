"""`bpcheck diagnose`: a generic panel names the cause of the seed's error and of every mutant."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from bpcheck.core.datasets import random_data
from bpcheck.core.tolerances import INFORMATIVE, gradient_tolerance
from bpcheck.mlp import diagnose as diagnosis
from bpcheck.mlp import variants
from bpcheck.mlp.mutants import MUTANTS
from bpcheck.mlp.problem import Problem
from manual.initialisers import truncated_normal
from manual.rules import RULES
from manual.spec import Spec

#: What each mutant's diagnosis must say: a phrase of the hypothesis, and the constant factor
#: (N is the batch size).
EXPECTED = {
    "sign-flip": ("the exact gradient", -1.0), "lost-half": ("the exact gradient", 2.0),
    "no-output-derivative": ("of layer 3 (sigmoid) missing", 1.0),
    "extra-output-derivative": ("applied twice", 1.0),
    "derivative-at-output": ("evaluated at the layer's output", 1.0),
    "no-hidden-derivative": ("of layer 1", 1.0),
    "transposed-backprop": ("not Wᵀ", 1.0),
    "bias-column-first": ("first, not last", 1.0),
    "bias-averaged": ("the exact gradient", "1/N"),
    "missing-1/N": ("the exact gradient", "N"), "extra-1/N": ("the exact gradient", "1/N"),
    "stale-weights": ("already updated by this same step", 1.0),
    "residual-loss-derivative": ("half-sse loss", 1.0),
    "missing-l2": ("penalty's gradient left out", 1.0),
    "l2-on-bias": ("biases too", 1.0),
}
N = 5


def problem_for(options: dict) -> Problem:
    """A fixed 3-layer sigmoid network of the kind the mutant is defined on, random data."""
    width = options.get("width")
    sizes = (width,) * 4 if width else (3, 4, 4, 2)
    spec = Spec(sizes, ("tanh", "sigmoid", "sigmoid"), options.get("loss", "half-sse"),
                options.get("reduction", "sum"), options.get("bias", "node"), "cols",
                l2=options.get("l2", 0.0))
    rng = np.random.default_rng(7)
    X, Y = random_data(spec, N, rng)
    return Problem(spec, truncated_normal(spec, rng), X, Y, 0.1)


@pytest.mark.parametrize("name", list(MUTANTS))
def test_every_mutant_is_diagnosed(name):
    mutant = MUTANTS[name]
    problem = problem_for(mutant.options)
    directions = mutant.rule().directions(problem.spec, problem.params, problem.X, problem.Y, problem.lr)
    explanations = diagnosis.diagnose(directions, problem)
    assert explanations, f"{name} agrees with the exact gradient on this problem"
    phrase, factor = EXPECTED[name]
    factor = {"N": N, "1/N": 1 / N}.get(factor, factor)
    exact = gradient_tolerance(problem.spec, problem.n_samples, "float64")  # τ: float64 rounding
    for e in explanations:  # the mutant's cause is the answer or one as simple
        tied = [(e.hypotheses, e.factor), *((other[0], other[1]) for other in e.alternatives)]
        assert e.hypotheses and any(any(phrase in h for h in hypotheses) and
                                    np.isclose(c, factor, rtol=exact, atol=0)
                                    for hypotheses, c in tied), (e, name)
        assert e.residual <= exact, (e, name)


def test_the_seed_literal_rule_gets_both_of_its_causes():
    rule = RULES["seed-literal"]
    spec = Spec((4, 3, 3), ("sigmoid", "sigmoid"))
    rng = np.random.default_rng(0)
    X, Y = random_data(spec, 6, rng)
    problem = Problem(spec, truncated_normal(spec, rng), X, Y, 0.5)
    [explanation] = diagnosis.diagnose(rule.directions(spec, problem.params, X, Y, 0.5), problem)
    assert explanation.parameter == "W1" and len(explanation.hypotheses) == 2
    assert any("σ′ of layer 2 (sigmoid) missing" in h for h in explanation.hypotheses)
    assert any("already updated" in h for h in explanation.hypotheses)


def test_an_unexplained_discrepancy_is_reported_as_such():
    problem = problem_for({})
    exact = RULES["derived"].directions(problem.spec, problem.params, problem.X, problem.Y, problem.lr)
    noisy = {k: v + np.random.default_rng(1).standard_normal(v.shape) for k, v in exact.items()}
    explanations = diagnosis.diagnose(noisy, problem, max_combination=1)
    assert explanations and all(not e.hypotheses and e.residual > INFORMATIVE for e in explanations)
    assert all(0 < e.allowed < e.residual for e in explanations)  # said beside what rounding allows


def test_the_panel_does_not_know_any_rule_by_name():
    code = inspect.getsource(diagnosis) + inspect.getsource(variants)
    for name in [*RULES, *MUTANTS]:
        assert name not in code, name
