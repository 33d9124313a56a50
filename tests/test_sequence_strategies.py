"""The sequence strategies draw what they say: every kind and option, lengths and sizes within
their caps, repeated tokens, padded steps, and values away from kinks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from bpcheck.layers.sequence_strategies import (
    MAX_FEATURES,
    MAX_STEPS,
    MAX_VOCAB,
    sequence_layer_problems,
    sequence_networks,
    sequence_problems,
)
from bpcheck.layers.strategies import KINK_MARGIN_RELATIVE, MAX_STACK_BATCH
from manual.spec import ACTIVATIONS, parse_activation
from manual.stack import SEQUENCE_KINDS, walk
from reference import torch_stack

FIND = settings(max_examples=500, database=None)


@settings(max_examples=40)
@given(data=st.data())
def test_drawn_sequence_problems_are_capped_and_away_from_kinks(data):
    problem = data.draw(st.one_of(st.sampled_from(SEQUENCE_KINDS).flatmap(sequence_layer_problems),
                                  sequence_problems()))
    stack = problem.stack
    assert 1 <= problem.n_samples <= MAX_STACK_BATCH and 1 <= stack.input_shape[0] <= MAX_STEPS + 1
    for layer in walk(stack.layers):
        assert layer.width <= MAX_FEATURES and layer.vocab <= MAX_VOCAB
    if stack.tokens and stack.layers[1].kind == "flatten":  # an embedding alone repeats a token
        assert problem.x.size > stack.layers[0].vocab
        assert len(np.unique(problem.x)) < problem.x.size
    if stack.per_step:  # padding after each sample's length, at least one real step
        padding = problem.masks["padding"]
        assert np.all(padding[:, 0] == 1) and np.all(np.diff(padding, axis=1) <= 0)
    inputs, _ = torch_stack.layer_inputs(stack, problem.params, problem.x, problem.masks)
    for layer, x in inputs:
        if layer.kind == "activation":
            for kink in ACTIVATIONS[parse_activation(layer.activation)[0]].kinks:
                assert np.min(np.abs(x - kink)) >= KINK_MARGIN_RELATIVE * float(np.max(np.abs(x)))


@pytest.mark.parametrize(("kind", "condition"), [
    ("embedding", lambda layer: layer.vocab == MAX_VOCAB),
    ("rnn", lambda layer: not layer.bias and layer.width == MAX_FEATURES),
    ("lstm", lambda layer: not layer.bias),
    ("gru", lambda layer: not layer.bias),
    ("attention", lambda layer: layer.heads == 2 and layer.causal and layer.projections and not layer.bias),
    ("attention", lambda layer: layer.heads == 3 and not layer.projections),
])
def test_every_sequence_option_is_reachable(kind, condition):
    problem = find(sequence_layer_problems(kind), lambda p: condition(p.stack.layers[0]), settings=FIND)
    assert problem.stack.layers[0].kind == kind


@pytest.mark.parametrize("condition", [
    lambda p: p.stack.input_shape[0] == 1,  # one step: no recurrence, a softmax over one key
    lambda p: p.stack.per_step and not p.masks["padding"].all(),  # some step padded
    lambda p: p.stack.tokens and p.stack.per_step and p.stack.reduction == "mean",
    lambda p: sum(layer.kind in ("rnn", "lstm", "gru", "attention") for layer in p.stack.layers) == 2,
    lambda p: any(layer.kind == "dropout" for layer in p.stack.layers) and not p.stack.per_step,
])
def test_sequence_networks_reach_every_shape_of_problem(condition):
    assert find(sequence_problems(), condition, settings=FIND)


@pytest.mark.parametrize("kind", SEQUENCE_KINDS)
def test_random_sequence_networks_hold_every_kind(kind):
    found = find(sequence_networks(), lambda stack: any(layer.kind == kind for layer in stack.layers),
                 settings=FIND)
    assert found.classes >= 2
