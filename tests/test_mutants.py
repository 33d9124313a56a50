"""The mutation gate: every catalogued wrong rule is caught by the property check."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpcheck.mlp.mutants import MUTANTS, Knobs, hunt_mutant, mutated_directions
from bpcheck.mlp.strategies import problems, specs
from manual import network
from manual.rules import RULES


@pytest.mark.parametrize("name", list(MUTANTS))
def test_every_mutant_is_caught(name):
    found = hunt_mutant(MUTANTS[name], settings.default.max_examples)
    assert found.caught, f"{name} ({MUTANTS[name].change}) survived {settings.default.max_examples} networks"
    assert found.witnesses and found.examples_to_catch is not None
    assert found.mutant.rule().unsupported_reason(found.minimal.spec) is None


def test_the_catalogue_is_large_and_stays_out_of_the_rule_registry():
    assert len(MUTANTS) >= 15
    assert not set(MUTANTS) & set(RULES)
    assert all(not rule.claims_correct for rule in (m.rule() for m in MUTANTS.values()))


@given(data=st.data())
def test_with_no_knob_turned_the_mutant_machinery_is_the_derived_rule(data):
    """Each mutant differs from the derived rule only by its knob: untouched, they coincide."""
    problem = data.draw(problems(specs(max_hidden_layers=3)))
    args = (problem.spec, problem.params, problem.X, problem.Y)
    exact = network.gradients(*args)
    untouched = mutated_directions(Knobs(), *args, problem.lr)
    for key, value in exact.items():
        assert (untouched[key] == value).all(), key
