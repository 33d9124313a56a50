"""The layers' mutation gate: every classic layer mistake differs wherever it changes anything,
and the layer-by-layer diagnosis names its cause without reading the mutant."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import manual.layers
from bpcheck.layers.compare import DERIVED, OWN_FORWARD, compare_stack
from bpcheck.layers.diagnose import NEARBY, diagnose_layers
from bpcheck.layers.mutants import LAYER_MUTANTS, MUTANT_KINDS, changes_something
from bpcheck.layers.problem import random_problem
from bpcheck.layers.sequence_strategies import layer_problems
from manual.stack import Stack

#: What the diagnosis must say of each mutant: words of the nearby layer that explains it.
CAUSE = {
    "conv_flipped_kernel": "the kernel flipped",
    "conv_padding_from_corner": "the padding ignored",
    "conv_stride_ignored": "stride 1 taken",
    "conv_dilation_ignored": "dilation 1 taken",
    "max_pool_spread": "sent to every position of the window",
    "avg_pool_unscaled": "without 1/(kh·kw)",
    "batch_norm_first_term": "the mean and variance terms left out",
    "layer_norm_over_batch": "over the batch axis",
    "dropout_unscaled": "not rescaled",
    "embedding_assigned": "assigned, not accumulated",
    "rnn_bptt_one_step": "truncated to the last step",
    "rnn_hidden_not_carried": "not carried from step to step",
    "lstm_sigmoid_derivative_for_tanh": "differentiated as a sigmoid",
    "attention_unscaled_backward": "without 1/√d",
    "softmax_diagonal": "reduced to its diagonal",
    "causal_mask_ignored_backward": "causal mask ignored",
}
#: Mutants whose forward pass is wrong too (their backward is that forward's exact gradient).
WRONG_FORWARD = {"layer_norm_over_batch", "dropout_unscaled"}
MUTANT_EXAMPLES = 20


def test_every_mutant_has_a_cause_the_panel_can_name():
    assert set(CAUSE) == set(LAYER_MUTANTS)
    for name, words in CAUSE.items():
        assert any(words in hypothesis for hypothesis, _ in NEARBY[MUTANT_KINDS[name]]), name
    assert not any(rule.claims_correct for rule in LAYER_MUTANTS.values())


def test_manual_layers_hold_no_mutant_switch():
    """manual/ holds the derivations only: no function of manual.layers takes a switch (a
    parameter defaulting to True or False) that turns a mistake on; the mutants swap whole
    functions (``bpcheck.layers.mutants``)."""
    switches = []
    for info in pkgutil.iter_modules(manual.layers.__path__):
        module = importlib.import_module(f"manual.layers.{info.name}")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            parameters = inspect.signature(function).parameters.values()
            switches += [f"{module.__name__}.{name}({p.name}=)" for p in parameters
                         if function.__module__ == module.__name__ and isinstance(p.default, bool)]
    assert switches == []


@pytest.mark.parametrize("name", list(LAYER_MUTANTS))
@settings(max_examples=MUTANT_EXAMPLES)
@given(data=st.data())
def test_each_layer_mutant_differs_wherever_its_mistake_matters_and_is_diagnosed(name, data):
    problem = data.draw(layer_problems(MUTANT_KINDS[name], data.draw(st.sampled_from(
        ["float64", "float32"]))))
    assume(changes_something(LAYER_MUTANTS[name], problem))
    rule = LAYER_MUTANTS[name]
    (report,), _, _ = compare_stack(problem, [rule])
    assert report.verdict == "DIFFERS", f"{name} passed on {problem.stack.describe()}"
    own = {row.verdict for row in report.rows if row.witness == OWN_FORWARD}
    if name in WRONG_FORWARD:  # consistent with its own (wrong) forward: not the backward's fault
        assert "DIFFERS" not in own, f"{name}: its backward is its forward's exact gradient"
    else:
        assert "DIFFERS" in own, f"{name}: the backward should disagree with its own forward"
    findings = diagnose_layers(rule, problem)
    assert findings, f"{name}: no layer found to differ"
    assert {f.layer for f in findings} == {problem.stack.layers[0].name}
    assert all(any(CAUSE[name] in words for words in f.explained_by) for f in findings), findings


def test_the_diagnosis_finds_the_one_wrong_layer_inside_a_network():
    stack = Stack("conv2d:3,k3,s2,p1;relu;max_pool2d:k2,s1;dropout:p0.3;conv2d:3,k2,nobias;batch_norm;"
                  "tanh;layer_norm;flatten;dense:3", (2, 9, 9))
    problem = random_problem(stack, 3, seed=2)
    findings = diagnose_layers(LAYER_MUTANTS["batch_norm_first_term"], problem)
    assert [(f.layer, f.quantity) for f in findings] == [("bn1", "x")]
    assert "the mean and variance terms left out" in findings[0].explained_by[0]
    assert diagnose_layers(DERIVED, problem) == []


def test_the_diagnosis_finds_the_one_wrong_layer_inside_a_sequence_network():
    stack = Stack("embedding:4,v3;gru:4;attention:h2,causal;lstm:2;tanh;dense:2", (5,))
    problem = random_problem(stack, 3, seed=3)
    for name, layer in (("lstm_sigmoid_derivative_for_tanh", "lstm1"),
                        ("causal_mask_ignored_backward", "attn1")):
        (report,), _, _ = compare_stack(problem, [LAYER_MUTANTS[name]])
        assert report.verdict == "DIFFERS"
        findings = diagnose_layers(LAYER_MUTANTS[name], problem)
        assert {f.layer for f in findings} == {layer}, findings
        assert all(CAUSE[name] in " ".join(f.explained_by) for f in findings)
    assert diagnose_layers(DERIVED, problem) == []
