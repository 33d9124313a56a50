"""The rule's own forward as finite differences run it (``StackRule.own_loss``): copies that perturb
one array after another give each the loss a whole forward pass gives, bit for bit, while the
layers of ``manual.layers`` before the perturbed array run once; any other forward runs every time."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bpcheck.layers.compare import DERIVED, StackRule, swapped
from bpcheck.layers.problem import StackProblem, random_problem
from bpcheck.layers.strategies import networks, stack_problems
from manual import stack_network
from manual.layers import simple
from manual.stack import Stack


def _copies(problem: StackProblem) -> list[dict]:
    """Each parameter (and x, unless tokens) scaled up, then down: one array after another."""
    arrays = problem.params | ({} if problem.stack.tokens else {"x": problem.x})
    return [arrays | {name: arrays[name] * factor} for name in arrays for factor in (1 + 1e-3, 1 - 1e-3)]


def _whole(rule: StackRule, problem: StackProblem, arrays: dict) -> float:
    """L by one whole forward pass, nothing reused."""
    x = problem.x if problem.stack.tokens else arrays["x"]
    out, _ = stack_network.forward(problem.stack.layers, arrays, x, problem.masks, rule.pairs)
    return stack_network.loss_gradient(problem.stack, out, problem.y, problem.masks)[0]


@settings(max_examples=20)
@given(data=st.data())
def test_each_copy_gives_the_loss_of_a_whole_forward_pass_bit_for_bit(data):
    problem = data.draw(networks().flatmap(stack_problems)).in_float64()
    own = DERIVED.own_loss(problem)
    copies = _copies(problem)
    assert [own(copy) for copy in copies] == [_whole(DERIVED, problem, copy) for copy in copies]


def test_the_layers_before_a_perturbed_array_run_once(monkeypatch):
    problem = random_problem(Stack("embedding:4,v6;gru:6;attention:h2,causal;dense:3", (8,)), 4, seed=0)
    ran, whole = [], stack_network.forward
    monkeypatch.setattr(stack_network, "forward",
                        lambda layers, *rest: ran.extend(layers) or whole(layers, *rest))
    own = DERIVED.own_loss(problem)
    for copy in _copies(problem):
        own(copy)
    runs = [sum(layer.name == name for layer in ran) for name in ("emb1", "gru1", "attn1", "dense1")]
    # a layer runs for the copies of its arrays and of every earlier layer's, and once more for the
    # first copy after them (back to the unperturbed arrays): 2·1 + 1, 2·(1 + 5) + 1, 2·(6 + 7) + 1;
    # the last layer for every copy. The GRU runs 13 times instead of 30.
    assert runs == [3, 13, 27, 30]


def test_a_forward_not_of_manual_layers_runs_every_time_and_what_follows_sees_its_output():
    """A user's forward may keep state: it runs for every copy, and the layers after it are
    reused only when it returned the same bytes."""
    calls = []

    def counting_dense(x, params, layer):
        calls.append(1)
        out, cache = simple.dense_forward(x, params, layer)
        return out * (1 + 1e-3 * len(calls)), cache  # state: each call differs

    rule = StackRule("counting", "dense forward that keeps state", pairs=swapped(
        {"dense": (counting_dense, simple.dense_backward)}))
    problem = random_problem(Stack("dense:5;tanh;dense:3", (4,)), 3, seed=1)
    own = rule.own_loss(problem)
    copies = _copies(problem)
    got = [own(copy) for copy in copies]
    assert len(calls) == 2 * len(copies)
    calls.clear()
    assert got == [_whole(rule, problem, copy) for copy in copies]
    assert not np.isnan(got).any()
