"""Sequence models: embedding, rnn, lstm, gru, attention and the loss at every step, each alone
and in random sequence networks, against torch, jax and finite differences (of torch's forward
and of the rule's own), in float64 and float32; and their conventions, tested exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bpcheck.layers.compare import DERIVED, compare_stack
from bpcheck.layers.problem import random_problem
from bpcheck.layers.sequence_strategies import sequence_layer_problems, sequence_problems
from manual import stack_network
from manual.stack import SEQUENCE_KINDS, Stack, param_shapes
from manual.stack_text import describe_layers, parse_layers
from reference import jax_stack, torch_sequence, torch_stack
from tests.test_layers import assert_agrees_with_every_witness

#: Examples per kind and dtype, and per network dtype (as tests/test_layers.py, for time).
LAYER_EXAMPLES, NETWORK_EXAMPLES = 15, 15


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", SEQUENCE_KINDS)
@settings(max_examples=LAYER_EXAMPLES)
@given(data=st.data())
def test_each_sequence_layer_alone_agrees_with_torch_jax_and_finite_differences(kind, dtype, data):
    assert_agrees_with_every_witness(data.draw(sequence_layer_problems(kind, dtype)))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@settings(max_examples=NETWORK_EXAMPLES)
@given(data=st.data())
def test_random_sequence_networks_agree_with_torch_jax_and_finite_differences(dtype, data):
    assert_agrees_with_every_witness(data.draw(sequence_problems(dtype)))


def test_repeated_tokens_accumulate_their_gradients_exactly_as_both_frameworks_do():
    stack = Stack("embedding:2,v3;flatten", (4,), loss="half-sse", reduction="sum")
    x = np.array([[1, 1, 1, 2], [0, 1, 2, 2]])
    y = np.zeros((2, 8))
    params = {"emb1.W": np.arange(6.0).reshape(3, 2)}
    grads = stack_network.gradients(stack, params, x, y)
    # ½Σ(W[x] − 0)²: ∂/∂W[v] = (count of v) · W[v]
    np.testing.assert_array_equal(grads["emb1.W"], np.array([[1], [4], [3]]) * params["emb1.W"])
    for witness in (torch_stack, jax_stack):
        np.testing.assert_array_equal(witness.gradients(stack, params, x, y)["emb1.W"], grads["emb1.W"])
    assert "x" not in grads


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_recurrent_layers_use_torch_gate_order_and_two_biases(kind):
    """The module's own parameters copied in by name give our output, and the torch witness's
    (the op the module calls, with our weights): the layouts are torch's."""
    torch.manual_seed(0)
    module = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](
        3, 4, batch_first=True, dtype=torch.float64)
    stack = Stack(f"{kind}:4", (5, 3), loss="half-sse")
    module_names = {"W_ih": "weight_ih_l0", "W_hh": "weight_hh_l0", "b_ih": "bias_ih_l0",
                    "b_hh": "bias_hh_l0"}
    params = {f"{kind}1.{ours}": getattr(module, theirs).detach().numpy().copy()
              for ours, theirs in module_names.items()}
    params |= {name: np.zeros(shape) for name, shape in param_shapes(stack).items() if name.endswith("0")}
    x = np.random.default_rng(0).standard_normal((2, 5, 3))
    ours, _ = stack_network.forward(stack.layers, params, x, {})
    theirs, _ = module(torch.tensor(x))
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=0, atol=1e-14)
    own = {name.partition(".")[2]: torch.tensor(value) for name, value in params.items()}
    witness = torch_sequence.recurrent(stack.layers[0], torch.tensor(x), own)
    np.testing.assert_allclose(witness.numpy(), theirs.detach().numpy(), rtol=0, atol=1e-14)
    swapped = params[f"{kind}1.W_ih"].copy()
    swapped[:4], swapped[-4:] = params[f"{kind}1.W_ih"][-4:], params[f"{kind}1.W_ih"][:4]
    if kind != "rnn":  # a different gate order gives a different layer
        other, _ = stack_network.forward(stack.layers, params | {f"{kind}1.W_ih": swapped}, x, {})
        assert np.max(np.abs(other - ours)) > 1e-3


def test_padded_steps_change_nothing_and_mean_divides_by_the_real_steps():
    stack = Stack("rnn:3;dense:2", (4, 2), loss="softmax-ce-labels", reduction="mean")
    problem = random_problem(stack, 3, seed=5)
    padding = problem.masks["padding"]
    y2 = np.where(padding > 0, problem.y, 1 - problem.y)  # other labels on padded steps only
    first = stack_network.loss_and_gradients(*problem.arrays())
    second = stack_network.loss_and_gradients(stack, problem.params, problem.x, y2, problem.masks)
    assert first[0] == second[0]
    for name in first[1]:
        np.testing.assert_array_equal(first[1][name], second[1][name])
    total = stack_network.loss(stack.replace(reduction="sum"), problem.params, problem.x, problem.y,
                               problem.masks)
    assert first[0] == pytest.approx(total / padding.sum(), rel=1e-15)
    assert 0 < padding.sum() < padding.size or padding.all()


@pytest.mark.parametrize("text", [
    "embedding:3,v5;rnn:2,nobias;lstm:3;gru:2;attention:h2,causal;attention:h1,noproj;dense:2",
    "embedding:2,v4;attention:h2,causal,nobias;flatten;dense:3",
])
def test_sequence_layers_read_back_from_their_description(text):
    layers = parse_layers(text)
    assert parse_layers(describe_layers(layers)) == layers


@pytest.mark.parametrize(("text", "shape", "message"), [
    ("rnn:3;dense:2", (6,), r"rnn1 \(rnn\) needs samples of shape \(T, D\)"),
    ("dense:2;embedding:3,v4;dense:2", (5,), "must be the first layer"),
    ("attention:h2;dense:2", (4, 3), "3 features over 2 heads"),
    ("embedding:3;dense:2", (4,), "the vocabulary must be"),
    ("lstm:2;attention:h1;res(dense:2)", (3, 2), None),
    ("rnn:2;batch_norm;dense:2", (3, 2), r"bn1 \(batch_norm\) needs samples of shape \(F,\) or \(C, H, W\)"),
    ("embedding:3,v4;dense:2", (1, 8, 8), r"it reads \(T,\) integer tokens \(--input-shape T\)"),
])
def test_a_sequence_network_that_cannot_be_built_is_an_error_naming_the_layer(text, shape, message):
    if message is None:  # a residual dense block at every step keeps (T, 2): it builds
        assert Stack(text, shape).classes == 2
        return
    with pytest.raises(ValueError, match=message):
        Stack(text, shape)


def test_bad_sequence_inputs_are_errors_naming_the_argument_and_arrays_are_not_changed():
    stack = Stack("embedding:3,v4;gru:2;dense:2", (5,))
    problem = random_problem(stack, 2, seed=0)
    params, x, y, masks = problem.params, problem.x, problem.y, problem.masks
    copies = {name: value.copy() for name, value in {**params, "x": x, "y": y, **masks}.items()}
    cases = [
        ((params, x.astype(float), y, masks), TypeError, "x has dtype float64.*integer tokens"),
        ((params, x + 4, y, masks), ValueError, r"x has tokens in \[4, 7\].*\[0, 3\]"),
        ((params, x[:, :3], y, masks), ValueError, r"expected tokens \(N, 5\)"),
        ((params, x, y[:, 0], masks), ValueError, r"integer labels of shape \(2, 5\)"),
        ((params, x, y.astype(float), masks), TypeError, "y has shape"),
        ((params, x, y, {"padding": np.zeros((2, 5))}), ValueError, "all 0: every step is padding"),
        ((params, x, y, {"padding": np.full((2, 5), 0.5)}), ValueError, "only 0 and 1"),
    ]
    for arguments, error, message in cases:
        with pytest.raises(error, match=message):
            stack_network.gradients(stack, *arguments)
    for name, value in {**params, "x": x, "y": y, **masks}.items():
        np.testing.assert_array_equal(value, copies[name], err_msg=name)
    soft = Stack("rnn:2;dropout:p0.5;dense:2", (3, 1), loss="softmax-ce")
    p = random_problem(soft, 2, seed=0)
    with pytest.raises(ValueError, match=r"y has values in \[.*\]; loss='softmax-ce' expects probabilities"):
        stack_network.gradients(soft, p.params, p.x, np.full((2, 3, 2), 5.0), p.masks)
    with pytest.raises(TypeError, match=r"masks is None; the network's dropout layers need masks \['drop1"):
        stack_network.gradients(soft, p.params, p.x, np.full((2, 3, 2), 0.5), None)
    # the padding mask may be left out: every step is real
    assert stack_network.loss(stack, params, x, y) == stack_network.loss(
        stack, params, x, y, {"padding": np.ones((2, 5))})


def test_the_key_bias_is_left_out_because_its_gradient_is_exactly_zero():
    """softmax(s + c) = softmax(s): the bias torch's MultiheadAttention adds to keys has gradient
    0 (a constant per row of scores), so the description has none to check."""
    stack = Stack("attention:h2;dense:2", (3, 4))
    assert "attn1.b_k" not in param_shapes(stack) and "attn1.b_q" in param_shapes(stack)
    problem = random_problem(stack, 2, seed=1)
    leaves = {name: torch.tensor(v, requires_grad=True) for name, v in problem.params.items()}
    b_k = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    x = torch.tensor(problem.x).transpose(0, 1)
    out, _ = torch.nn.functional.multi_head_attention_forward(
        x, x, x, 4, 2, None, torch.cat([leaves["attn1.b_q"], b_k, leaves["attn1.b_v"]]), None, None, False,
        0.0, leaves["attn1.W_o"], leaves["attn1.b_o"], need_weights=False, use_separate_proj_weight=True,
        q_proj_weight=leaves["attn1.W_q"], k_proj_weight=leaves["attn1.W_k"],
        v_proj_weight=leaves["attn1.W_v"])
    (grad,) = torch.autograd.grad((out ** 2).sum(), [b_k])
    assert float(grad.abs().max()) < 1e-14


def test_the_sequence_cli_example_agrees_in_both_dtypes():
    for dtype in ("float64", "float32"):
        stack = Stack("embedding:4,v5;lstm:4;attention:h2,causal;dense:3", (6,), dtype=dtype)
        (report,), witness_rows, _ = compare_stack(random_problem(stack, 3, seed=0))
        assert report.verdict == "agrees", [r for r in report.rows if not r.agrees]
        assert not any(row.differs for row in witness_rows)


def test_a_saturated_gate_is_inconclusive_and_names_the_layer():
    stack = Stack("lstm:2;dense:2", (4, 1), loss="half-sse", reduction="sum")
    problem = random_problem(stack, 2, seed=2, scale=100.0)
    (report,), _, truth = compare_stack(problem)
    assert report.verdict == "inconclusive"
    assert truth.saturation.startswith("lstm1 (lstm) is saturated: a gate's input inside it reaches")
    assert not any(row.differs for row in report.rows)


def test_attention_on_one_step_leaves_its_scores_unsettled_and_says_why():
    """softmax over one key ≡ 1: W_q, b_q, W_k have gradient 0 whatever the rule; a mistake on
    the scores' path cannot show, so the verdict is inconclusive, not agrees."""
    from bpcheck.layers.mutants import LAYER_MUTANTS

    problem = random_problem(Stack("attention:h1;flatten;dense:2", (1, 2)), 3, seed=0)
    derived, diagonal = compare_stack(problem, [DERIVED, LAYER_MUTANTS["softmax_diagonal"]])[0]
    for report in (derived, diagonal):
        assert report.verdict == "inconclusive", report.verdict
        assert "a softmax over one key (T = 1)" in report.saturation
        assert {row.parameter for row in report.rows if row.verdict == "inconclusive"} == {
            "attn1.W_q", "attn1.b_q", "attn1.W_k"}


@pytest.mark.parametrize("text", ["embedding:3,v4;rnn:2;lstm:2;gru:2;dense:2",
                                  "embedding:4,v4;attention:h2,causal;attention:noproj;flatten;dense:2"])
def test_float32_networks_stay_float32_over_two_steps(text):
    stack = Stack(text, (3,), dtype="float32")
    problem = random_problem(stack, 2, seed=0)
    grads, new, _ = stack_network.sgd_step(*problem.arrays()[:2], problem.buffers, problem.x, problem.y,
                                           0.1, problem.masks)
    assert {g.dtype for g in grads.values()} == {v.dtype for v in new.values()} == {np.dtype(np.float32)}
    again, _, _ = stack_network.sgd_step(stack, new, problem.buffers, problem.x, problem.y, 0.1,
                                         problem.masks)
    assert {g.dtype for g in again.values()} == {np.dtype(np.float32)}


def test_copies_through_a_gru_and_attention_run_layer_by_layer_each_once_per_distinct_input_and_parameters(
        monkeypatch):
    """torch_stack.losses through a GRU and attention (``reference.torch_copies``): each copy's
    loss is the one it gives alone to within rounding (vmap and a larger batch may order a sum
    apart: 4 units in the last place measured, 32 allowed), and the GRU runs once for all the
    copies that share its parameters (the embedding's, and every copy after its own) and once
    for each of its own: 11 runs for 30 copies."""
    problem = random_problem(Stack("embedding:4,v6;gru:6;attention:h2,causal;dense:3", (8,)), 4, seed=0)
    copies = [{**problem.params, name: problem.params[name] * factor}
              for name in problem.params for factor in (1 + 1e-3, 1 - 1e-3)]
    runs = []
    gru = torch_sequence.OPS["gru"]
    monkeypatch.setitem(torch_sequence.OPS, "gru", lambda *args: runs.append(len(args[0])) or gru(*args))
    stacked = {name: np.stack([copy[name] for copy in copies]) for name in problem.params}
    together = torch_stack.losses(problem.stack, stacked, problem.y, problem.masks, problem.x)
    own = [name for name in problem.params if name.startswith("gru1.")]
    assert len(runs) == 1 + 2 * len(own)
    assert runs[0] == 4 * (2 + 1)  # the embedding's two copies and the unperturbed, as one batch
    alone = [torch_stack.loss(problem.stack, copy, problem.x, problem.y, problem.masks) for copy in copies]
    np.testing.assert_allclose(together, alone, rtol=32 * np.finfo(np.float64).eps, atol=0)


@settings(max_examples=20)
@given(data=st.data())
def test_random_sequence_networks_give_each_copy_its_own_loss_layer_by_layer(data):
    """As above, on the tests' random sequence networks (every recurrent kind, attention with and
    without projections, residual blocks, dropout, normalisation): copies perturbing one array
    after another give the losses each gives alone, to within rounding."""
    problem = data.draw(sequence_problems("float64"))
    arrays = problem.params | ({} if problem.stack.tokens else {"x": problem.x})
    copies = [arrays | {name: arrays[name] * factor} for name in arrays for factor in (1 + 1e-3, 1 - 1e-3)]
    stacked = {name: np.stack([copy[name] for copy in copies]) for name in arrays}
    together = torch_stack.losses(problem.stack, stacked, problem.y, problem.masks,
                                  problem.x if problem.stack.tokens else None)
    alone = [torch_stack.loss(problem.stack, {k: v for k, v in copy.items() if k != "x"},
                              copy.get("x", problem.x), problem.y, problem.masks) for copy in copies]
    np.testing.assert_allclose(together, alone, rtol=32 * np.finfo(np.float64).eps, atol=0)
