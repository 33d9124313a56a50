"""A whole hand-written backprop, checked in its author's conventions: ``UserRule`` and
``bpcheck.check``. The "user" rules here take their gradients from torch autograd over a
forward pass written in each convention, so they are right exactly when bpcheck hands them
the parameters, data and targets as declared and reads their results back as declared."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bpcheck import Conventions, UserRule, check
from bpcheck.core.verdicts import AGREES, RAISED, WRONG
from bpcheck.mlp.conventions import BIASES, DATA, PARAMS_SHORTHANDS, WEIGHTS
from bpcheck.mlp.strategies import problems, specs
from bpcheck.user.notebook import diagnosis_lines
from manual.spec import param_shapes

EXAMPLES = 12  # random networks per check: each agreeing check below costs about a second


def _grads(loss, leaves):
    return [g.numpy() for g in torch.autograd.grad(loss, leaves)]


def node_first_columns(params, X, Y, lr):
    """[W1, W2]: out × in with the bias weight first; samples as columns; sigmoid, ½‖·‖² summed.
    Returns the new parameters, written over the arrays it was given (bpcheck gives copies)."""
    W = [torch.tensor(w, requires_grad=True) for w in params]
    a = torch.tensor(X)
    for w in W:
        a = torch.sigmoid(w[:, 1:] @ a + w[:, :1])
    loss = 0.5 * ((a - torch.tensor(Y)) ** 2).sum()
    for w, g in zip(params, _grads(loss, W), strict=True):
        w -= lr * g
    return params


def in_out_rows_update(params, X, Y, lr):
    """(weights, biases) lists, in × out, (n,) biases, samples as rows, tanh then softmax
    cross-entropy on one-hot targets, mean; returns Δθ = −η∇."""
    weights, biases = ([torch.tensor(p, requires_grad=True) for p in group] for group in params)
    a = torch.tensor(X)
    for k, (w, b) in enumerate(zip(weights, biases, strict=True)):
        z = a @ w + b
        a = torch.tanh(z) if k < len(weights) - 1 else z
    loss = -(torch.tensor(Y) * torch.log_softmax(a, dim=1)).sum(dim=1).mean()
    grads = _grads(loss, weights + biases)
    return [-lr * g for g in grads[: len(weights)]], [-lr * g for g in grads[len(weights):]]


def per_sample_vectors(params, x, y):
    """{'W1', 'b1', ...} out × in with (1, n) bias rows; one sample as flat vectors; relu then
    identity, ½‖·‖²: the sample's gradient."""
    leaves = {name: torch.tensor(value, requires_grad=True) for name, value in params.items()}
    a, depth = torch.tensor(x), len(params) // 2
    for k in range(1, depth + 1):
        z = leaves[f"W{k}"] @ a + leaves[f"b{k}"][0]
        a = torch.relu(z) if k < depth else z
    loss = 0.5 * ((a - torch.tensor(y)) ** 2).sum()
    return dict(zip(leaves, _grads(loss, list(leaves.values())), strict=True))


CORRECT = {
    "new parameters, bias node first, columns": UserRule(
        "node_first", node_first_columns, computes="new_params",
        conventions=Conventions(params="list", bias="node_first", data="samples_as_columns")),
    "updates, in × out, rows, one-hot": UserRule(
        "in_out_update", in_out_rows_update, computes="update", activations=("tanh", "identity"),
        hidden_layers=(1, 2), loss="softmax-ce", reduction="mean",
        conventions=Conventions(params="weights,biases", weights="in_out", targets="one_hot")),
    "per-sample flat vectors, bias rows": UserRule(
        "per_sample", per_sample_vectors, per_sample=True, sample="vector",
        activations=("relu", "identity"), conventions=Conventions(bias="row")),
}


@pytest.mark.parametrize("rule", CORRECT.values(), ids=CORRECT.keys())
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_correct_rule_agrees_in_its_own_conventions(rule, dtype):
    report = check(rule, EXAMPLES, dtype=dtype)
    assert report.verdict == AGREES, str(report)
    assert report.examples >= EXAMPLES // 2


@settings(max_examples=40)
@given(problem=problems(specs(max_hidden_layers=2)), weights=st.sampled_from(WEIGHTS),
       bias=st.sampled_from(BIASES), data=st.sampled_from(DATA),
       params=st.sampled_from(PARAMS_SHORTHANDS))
def test_parameters_go_to_the_user_and_back_bit_for_bit(problem, weights, bias, data, params):
    conventions = Conventions(params=params, weights=weights, bias=bias, data=data)
    spec = problem.spec.replace(bias=conventions.bias_style)
    drawn = {name: np.arange(np.prod(shape), dtype=float).reshape(shape)
             for name, shape in param_shapes(spec).items()}
    yours = conventions.params_to_user(spec, drawn)
    back = conventions.params_from_user(spec, yours, "returned")
    assert all(np.array_equal(back[name], value) for name, value in drawn.items())
    expected = []
    for k in range(1, spec.depth + 1):
        out, inputs = spec.sizes[k], spec.sizes[k - 1] + conventions.node
        expected.append((out, inputs) if weights == "out_in" else (inputs, out))
        if not conventions.node:
            expected.append({"vector": (out,), "column": (out, 1), "row": (1, out)}[bias])
    assert sorted(leaf.shape for leaf in _flat(yours)) == sorted(expected)


def _flat(value):
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return [leaf for item in value for leaf in _flat(item)]
    return [value]


def scaled(factor: float) -> UserRule:
    """The per-sample rule with every gradient times ``factor``."""
    return UserRule(f"times_{factor}", lambda p, x, y: {k: factor * v for k, v in per_sample_vectors(
        p, x, y).items()}, per_sample=True, sample="vector", activations=("relu", "identity"),
        conventions=Conventions(bias="row"))


def _why(report) -> list[str]:
    return diagnosis_lines(report)


def test_a_lost_half_is_named():
    report = check(scaled(2.0), 30)
    assert report.verdict == WRONG
    answers = [line for line in _why(report) if not line.startswith(" ")]
    assert answers and all("a ½ lost" in line for line in answers), _why(report)


def test_a_sign_flip_is_named_gradient_ascent():
    def ascent(params, X, Y, lr):
        new = node_first_columns([w.copy() for w in params], X, Y, lr)
        return [2 * w - n for w, n in zip(params, new, strict=True)]

    rule = UserRule("ascent", ascent, computes="new_params",
                    conventions=Conventions(params="list", bias="node_first", data="samples_as_columns"))
    report = check(rule, 30)
    assert report.verdict == WRONG and report.entries
    assert any("gradient ascent" in line for line in _why(report)), _why(report)
    entry = report.entries[0]
    assert entry.location.startswith("params[") and np.isclose(entry.yours, -entry.exact)


BROKEN = {
    "raises": (lambda p, X, y: 1 / 0, "your function raised ZeroDivisionError: division by zero at "),
    "wrong shape": (lambda p, X, y: {k: v.reshape(-1) for k, v in p.items()},
                    "has shape (1,); expected (1, 1)"),
    "NaN": (lambda p, X, y: {k: v * np.nan for k, v in p.items()}, "contains NaN: 1 of 1 entries are not "
                                                                      "finite, the first at index ("),
    "wrong container": (lambda p, X, y: list(p.values()), "expected a dict with keys"),
    "float16": (lambda p, X, y: {k: v.astype(np.float16) for k, v in p.items()}, "less precise"),
}


@pytest.mark.parametrize("function, message", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_rule_fails_with_a_message_and_a_minimal_network(function, message):
    report = check(UserRule("broken", function, activations=("relu", "identity")), 20)
    assert report.verdict == RAISED and not report.passed
    assert message in report.message and "broken" in report.message
    assert report.counterexample is not None and max(report.counterexample.spec.sizes) <= 2
    assert "smallest network" in str(report)


def test_an_object_that_cannot_be_built_is_named():
    def model(sizes, lr):
        raise RuntimeError("needs a config file")

    rule = UserRule("unbuilt", lambda m, X, y, lr: None, computes="in_place", model=model,
                    conventions=Conventions(params={"W1": "W1", "b1": "b1", "W2": "W2", "b2": "b2"}))
    report = check(rule, 5)
    assert report.verdict == RAISED
    assert "your model raised RuntimeError: needs a config file" in report.message


@pytest.mark.parametrize("kwargs, message", [
    ({"computes": "gradient"}, "computes='gradient' is unknown"),
    ({"computes": "in_place"}, "needs model="),
    ({"per_sample": True, "computes": "update"}, "per_sample=True needs computes='gradients'"),
    ({"per_sample": True, "l2": 0.1}, "a penalty belongs to the batch"),
    ({"activations": ("relu", "softmax"), "loss": "softmax-ce"}, "apply it twice"),
    ({"activations": ("relu", "swishy")}, "activations[1]='swishy' is unknown"),
    ({"conventions": "rows"}, "must be a Conventions"),
    ({"hidden_layers": (2, 9)}, "hidden_layers=(2, 9)"),
])
def test_a_malformed_rule_is_refused_when_declared(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=None) as error:
        UserRule("bad", lambda *args: None, **kwargs)
    assert message in str(error.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"weights": "rows"}, "weights='rows' is unknown"),
    ({"params": ["W{k}"]}, "expected each of ['W1', 'b1', 'W2', 'b2'] once"),
    ({"params": {"W{k}": "W{k}", "b{k}": 3}}, "expected a name, a list, a tuple or a dict"),
])
def test_malformed_conventions_are_refused(kwargs, message):
    with pytest.raises((TypeError, ValueError)) as error:
        Conventions(**kwargs)
    assert message in str(error.value)


def test_the_report_renders_as_text_html_and_json():
    report = check(scaled(-1.0), 30)
    assert report.verdict == WRONG
    html = report._repr_html_()
    assert "WRONG" in html and "<table>" in html and "why:" in html
    data = json.loads(json.dumps(report.to_dict()))
    assert data["verdict"] == WRONG and data["counterexample"]["sizes"] and data["diagnosis"]


THREE_LAYERS = {"w1": "W1", "bias1": "b1", "w2": "W2", "bias2": "b2", "w3": "W3", "bias3": "b3"}


def test_a_template_without_k_fixes_the_depth():
    assert Conventions(params=THREE_LAYERS).fixed_depth == 3
    assert UserRule("three", print, hidden_layers=2, conventions=Conventions(params=THREE_LAYERS))
    with pytest.raises(ValueError, match=r"names 3 layers .*declare hidden_layers=2"):
        UserRule("three", print, conventions=Conventions(params=THREE_LAYERS))
    rule = UserRule("three", print, hidden_layers=2, conventions=Conventions(params=THREE_LAYERS))
    with pytest.raises(ValueError, match="names 3 layers"):
        rule.pinned(layers=(2, 3, 1))


def test_a_doubled_penalty_gradient_is_named():
    def doubled(params, X, Y):  # ½λ‖W‖² differentiated as λ‖W‖²: 2λW
        samples = [per_sample_vectors(params, x, y) for x, y in zip(X, Y, strict=True)]
        return {k: sum(s[k] for s in samples) + (2 * 0.25 * params[k] if k[0] == "W" else 0)
                for k in params}

    rule = UserRule("doubled", doubled, activations=("relu", "identity"), l2=0.25,
                    conventions=Conventions(bias="row"))
    report = check(rule, 30, layers=(2, 3, 2))
    assert report.verdict == WRONG
    assert any("penalty's gradient doubled" in line for line in _why(report)), _why(report)


def test_what_raised_says_where_and_what_the_code_was_given():
    def backprop(params, X, Y):
        return params["W9"]  # a KeyError in the user's own line

    report = check(UserRule("keys", backprop, activations=("relu", "identity")), 5)
    assert "your function raised KeyError: 'W9' at " in report.message
    assert "test_user_rule.py" in report.message and "return params[\"W9\"]" in report.message
    assert "it was given params {'W1': (1, 1), 'W2': (1, 1), 'b1': (1,), 'b2': (1,)}" in report.message


def test_soft_targets_assumed_to_sum_to_one_are_named():
    def softmax_minus_targets(params, X, T):  # right for one-hot T only
        hidden = np.tanh(X @ params["W1"] + params["b1"])
        z = hidden @ params["W2"] + params["b2"]
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        dz = p - T
        dh = dz @ params["W2"].T * (1 - hidden**2)
        return {"W1": X.T @ dh, "b1": dh.sum(axis=0), "W2": hidden.T @ dz, "b2": dz.sum(axis=0)}

    rule = UserRule("soft", softmax_minus_targets, activations=("tanh", "identity"),
                    loss="softmax-ce", conventions=Conventions(weights="in_out"))
    report = check(rule, 30)
    assert report.verdict == WRONG
    assert any("as if every target summed to one" in line for line in _why(report)), _why(report)
    one_hot = UserRule("one_hot", softmax_minus_targets, activations=("tanh", "identity"),
                       loss="softmax-ce", conventions=Conventions(weights="in_out", targets="one_hot"))
    assert check(one_hot, EXAMPLES).verdict == AGREES  # with one-hot targets it is right


@pytest.mark.parametrize("declared, hint", [
    ({"params": "list", "bias": "node_last", "data": "samples_as_columns"}, "bias='node_first'"),
    ({"params": "list", "bias": "node_first", "data": "samples_as_rows"}, "data='samples_as_columns'"),
])
def test_a_rule_declared_with_the_wrong_conventions_is_told_which_would_agree(declared, hint):
    rule = dataclasses.replace(CORRECT["new parameters, bias node first, columns"],
                               conventions=Conventions(**declared))
    report = check(rule, 30)
    assert report.verdict in (WRONG, RAISED)
    assert report.hints == [hint] and f"declared with {hint}" in report.message


def test_in_out_weights_declared_out_in_are_told_which_would_agree():
    rule = dataclasses.replace(CORRECT["updates, in × out, rows, one-hot"],
                               conventions=Conventions(params="weights,biases", targets="one_hot"))
    report = check(rule, 30)
    assert report.verdict in (WRONG, RAISED) and report.hints == ["weights='in_out'"], report.message


def test_a_bias_shape_declared_wrongly_is_told_which_would_agree():
    rule = dataclasses.replace(CORRECT["per-sample flat vectors, bias rows"], conventions=Conventions())
    report = check(rule, 30)
    assert report.verdict in (WRONG, RAISED) and report.hints == ["bias='row'"], report.message


def test_an_output_form_derivative_given_z_is_named():
    def tanh_prime_of_z(params, X, Y):  # 1 − z² where 1 − tanh²(z) = 1 − a² was meant
        z1 = X @ params["W1"] + params["b1"]
        h = np.tanh(z1)
        out = h @ params["W2"] + params["b2"]
        d_out = out - Y
        d_hidden = d_out @ params["W2"].T * (1 - z1**2)
        return {"W1": X.T @ d_hidden, "b1": d_hidden.sum(axis=0), "W2": h.T @ d_out, "b2": d_out.sum(axis=0)}

    rule = UserRule("tanh_of_z", tanh_prime_of_z, activations=("tanh", "identity"),
                    conventions=Conventions(weights="in_out"))
    report = check(rule, 30)
    assert report.verdict == WRONG
    assert any("σ′ of layer 1 (tanh) written for the output a but given z" in line
               for line in _why(report)), _why(report)
