"""The strategies for networks of layers draw what they say: every kind and option, sizes within
their caps, and values away from kinks and ties."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import find, given, settings
from hypothesis import strategies as st

from bpcheck.layers.strategies import (
    ALONE,
    KINK_MARGIN_RELATIVE,
    MAX_SIDE,
    MAX_STACK_BATCH,
    NETWORK_SCALES,
    networks,
    single_layer_problems,
    stack_problems,
)
from manual.spec import ACTIVATIONS, parse_activation
from manual.stack import layer_inputs, stride, walk
from reference import torch_stack


@settings(max_examples=60)
@given(data=st.data())
def test_drawn_problems_are_capped_and_away_from_kinks_and_ties(data):
    in_networks = networks().flatmap(lambda stack: stack_problems(stack, scales=NETWORK_SCALES))
    problem = data.draw(st.one_of(st.sampled_from(ALONE).flatmap(single_layer_problems), in_networks))
    assert 1 <= problem.n_samples <= MAX_STACK_BATCH
    assert all(side <= MAX_SIDE for side in problem.stack.input_shape[1:])
    inputs, _ = torch_stack.layer_inputs(problem.stack, problem.params, problem.x, problem.masks)
    for layer, x in inputs:  # the margin, checked on torch's forward rather than the filter's own
        scale = float(np.max(np.abs(x)))
        if layer.kind == "activation":  # the activation's record says where its kinks are
            for kink in ACTIVATIONS[parse_activation(layer.activation)[0]].kinks:
                assert np.min(np.abs(x - kink)) >= KINK_MARGIN_RELATIVE * scale
        if layer.kind == "max_pool2d" and layer.kernel != (1, 1):  # a window of one has no tie
            windows = torch.nn.functional.unfold(torch.tensor(x), layer.kernel, stride=stride(layer))
            top = torch.topk(windows.reshape(x.shape[0], x.shape[1], -1, windows.shape[-1]), 2, dim=2).values
            assert float((top[:, :, 0] - top[:, :, 1]).min()) >= KINK_MARGIN_RELATIVE * scale
    for layer, shape in layer_inputs(problem.stack):
        if layer.kind == "batch_norm":  # three values per channel at least
            assert problem.n_samples * math.prod(shape[1:]) >= 3
        if layer.kind == "layer_norm":
            assert math.prod(shape) >= 3


def test_the_margin_test_draws_kinked_activations_and_max_pooling():
    """The test above draws networks holding both kinds of kink it checks."""
    def both(stack):
        kinds = {layer.kind for layer in walk(stack.layers)}
        kinked = any(ACTIVATIONS[parse_activation(layer.activation)[0]].kinks
                     for layer in walk(stack.layers) if layer.kind == "activation")
        return kinked and "max_pool2d" in kinds

    assert find(networks(), both, settings=settings(max_examples=300, database=None))


@pytest.mark.parametrize(("kind", "condition"), [
    ("conv2d", lambda layer: layer.stride[0] > 1 and layer.dilation > 1 and layer.padding > 0),
    ("conv2d", lambda layer: layer.kernel[0] != layer.kernel[1] and not layer.bias),
    ("max_pool2d", lambda layer: layer.stride[0] < layer.kernel[0]),  # overlapping windows
    ("avg_pool2d", lambda layer: layer.stride[0] > layer.kernel[0]),  # gaps
    ("batch_norm", lambda layer: layer.momentum == 1.0 and layer.eps == 1e-3),
    ("dropout", lambda layer: layer.p == 0.9),
    ("dense", lambda layer: not layer.bias),
])
def test_every_option_is_reachable(kind, condition):
    problem = find(single_layer_problems(kind), lambda p: condition(p.stack.layers[0]),
                   settings=settings(max_examples=500, database=None))
    assert problem.stack.layers[0].kind == kind


@pytest.mark.parametrize("condition", [
    lambda p: p.n_samples == 1 and any(layer.kind == "batch_norm" for layer in walk(p.stack.layers)),
    lambda p: len(p.stack.input_shape) == 1,  # normalisation over flat samples
])
def test_batch_norm_on_a_batch_of_one_and_flat_samples_are_drawn(condition):
    strategy = st.sampled_from(["batch_norm", "layer_norm"]).flatmap(single_layer_problems)
    assert find(strategy, condition, settings=settings(max_examples=500, database=None))


@pytest.mark.parametrize("kind", ["res", "dropout", "batch_norm", "layer_norm", "max_pool2d", "avg_pool2d"])
def test_random_networks_hold_every_kind(kind):
    found = find(networks(), lambda stack: any(layer.kind == kind for layer in walk(stack.layers)),
                 settings=settings(max_examples=300, database=None))
    assert found.classes >= 2


@settings(max_examples=30)
@given(data=st.data())
def test_a_conv_before_batch_norm_has_no_bias(data):
    stack = data.draw(networks())
    pairs = [(before, after) for before, after in itertools.pairwise(stack.layers)
             if before.kind == "conv2d" and after.kind == "batch_norm"]
    assert all(not before.bias for before, _ in pairs)
