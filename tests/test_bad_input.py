"""Bad input raises a clear error naming the argument and the expected shape; inputs stay intact."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from bpcheck.compare import Problem
from bpcheck.strategies import problems
from manual import network
from manual.rules import RULES
from manual.spec import Spec
from reference import WITNESSES

SPEC = Spec((4, 5, 3), ("sigmoid", "sigmoid"))  # the seed's network: bias node, samples as columns


def rule_step(rule):
    return lambda spec, p, X, Y: rule.step(spec, p, X, Y, 0.1)


ENTRY_POINTS = {
    "gradients": lambda spec, p, X, Y: network.gradients(spec, p, X, Y),
    "sgd_step": lambda spec, p, X, Y: network.sgd_step(spec, p, X, Y, 0.1),
    "loss": lambda spec, p, X, Y: network.loss(spec, p, X, Y),
    **{f"{name}.step": rule_step(rule) for name, rule in RULES.items()},
    "Problem": lambda spec, p, X, Y: Problem(spec, p, X, Y, 0.1),
}
entry_points = pytest.mark.parametrize("call", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())


def good():
    rng = np.random.default_rng(0)
    params = {"W1": rng.normal(size=(5, 5)), "W2": rng.normal(size=(3, 6))}
    return params, rng.normal(size=(4, 6)), rng.uniform(size=(3, 6))


@entry_points
@pytest.mark.parametrize(("argument", "value", "error", "message"), [
    ("X", np.zeros(4), ValueError, r"X has shape \(4,\); expected \(4, N\)"),
    ("X", np.zeros((5, 6)), ValueError, r"X has shape \(5, 6\); expected \(4, N\)"),
    ("X", np.zeros((4, 6, 1)), ValueError, r"X has shape \(4, 6, 1\); expected \(4, N\)"),
    ("X", np.zeros((4, 0)), ValueError, r"X has shape \(4, 0\): the batch is empty"),
    ("X", np.zeros((4, 6), dtype=int), TypeError, r"X has dtype int64; expected real float64"),
    ("X", np.zeros((4, 6), dtype=complex), TypeError, r"X has dtype complex128; expected real"),
    ("X", np.zeros((4, 6), dtype=np.float32), TypeError, r"X has dtype float32; the spec asks for float64"),
    ("X", np.full((4, 6), np.nan), ValueError, r"X contains NaN or Inf"),
    ("Y", np.zeros(3), ValueError, r"Y has shape \(3,\); expected \(3, 6\)"),
    ("Y", np.zeros((3, 5)), ValueError, r"Y has shape \(3, 5\); expected \(3, 6\)"),
    ("Y", np.zeros((6, 3)), ValueError, r"Y has shape \(6, 3\); expected \(3, 6\)"),
    ("Y", np.full((3, 6), np.inf), ValueError, r"Y contains NaN or Inf"),
    ("W1", np.zeros((5, 4)), ValueError, r"params\['W1'\] has shape \(5, 4\); expected \(5, 5\)"),
    ("W2", np.full((3, 6), -np.inf), ValueError, r"params\['W2'\] contains NaN or Inf"),
    ("b1", np.zeros(5), ValueError, r"params has keys \['W1', 'W2', 'b1'\]; expected \['W1', 'W2'\]"),
])
def test_bad_input_raises_naming_the_argument_and_expected_shape(call, argument, value, error, message):
    params, X, Y = good()
    if argument == "X":
        X = value
    elif argument == "Y":
        Y = value
    else:
        params[argument] = value
    with pytest.raises(error, match=message):
        call(SPEC, params, X, Y)


@entry_points
def test_missing_parameter_is_named(call):
    params, X, Y = good()
    del params["W2"]
    with pytest.raises(ValueError, match=r"missing \['W2'\]"):
        call(SPEC, params, X, Y)


@pytest.mark.parametrize(("changes", "message"), [
    ({"sizes": (4, 0, 3)}, r"sizes\[1\]=0: every layer needs width >= 1"),
    ({"sizes": (4,)}, r"needs at least \(inputs, outputs\)"),
    ({"sizes": (4, 2.5, 3)}, r"sizes\[1\]=2.5 must be an int"),
    ({"activations": ("sigmoid", "swish")}, r"activations\[1\]='swish' is unknown; expected one of"),
    ({"activations": ("sigmoid",)}, r"activations has 1 names; .* so expected 2"),
    ({"loss": "hinge"}, r"loss='hinge' is unknown"),
    ({"bias": "none"}, r"bias='none' is unknown; expected one of \['node', 'vector'\]"),
    ({"layout": "diagonal"}, r"layout='diagonal' is unknown"),
    ({"dtype": "float16"}, r"dtype='float16' is unknown"),
])
def test_bad_spec_is_rejected_with_the_field_named(changes, message):
    fields = {"sizes": (4, 5, 3), "activations": ("sigmoid", "sigmoid")} | changes
    with pytest.raises((ValueError, TypeError), match=message):
        Spec(**fields)


@pytest.mark.parametrize("lr", [-0.1, float("nan"), float("inf"), "0.1", True])
def test_bad_learning_rate_is_rejected(lr):
    params, X, Y = good()
    with pytest.raises((ValueError, TypeError), match=r"lr="):
        network.sgd_step(SPEC, params, X, Y, lr)


def test_rows_layout_expects_samples_as_rows():
    params, X, Y = good()
    rows = SPEC.replace(layout="rows")
    with pytest.raises(ValueError, match=r"X has shape \(4, 6\); expected \(N, 4\)"):
        network.gradients(rows, params, X, Y)
    network.gradients(rows, params, X.T, Y.T)  # the same data as rows is accepted


@given(problem=problems())
def test_no_rule_or_witness_modifies_its_inputs(problem):
    arrays = {**problem.params, "X": problem.X, "Y": problem.Y}
    before = {name: a.copy() for name, a in arrays.items()}
    for a in arrays.values():
        a.flags.writeable = False  # any in-place write now raises
    args = (problem.spec, problem.params, problem.X, problem.Y)
    for rule in RULES.values():
        if rule.unsupported_reason(problem.spec) is None:
            rule.directions(*args, problem.lr)
            rule.step(*args, problem.lr)
    for witness in WITNESSES.values():
        witness.gradients(*args)
        witness.sgd_step(*args, problem.lr)
    for name, a in arrays.items():
        np.testing.assert_array_equal(a, before[name], err_msg=f"{name} was modified")


@pytest.mark.parametrize(("changes", "message"), [
    ({"activations": ("softmax", "sigmoid")}, r"activations\[0\]='softmax': softmax is allowed only at the "
                                             r"output layer \(activations\[1\]\)"),
    ({"activations": ("leaky_relu:x", "sigmoid")},
     r"activations\[0\]='leaky_relu:x': expected leaky_relu:<number>"),
    ({"activations": ("tanh:2", "sigmoid")}, r"activations\[0\]='tanh:2': tanh takes no parameter"),
    ({"activations": ("leaky_relu:inf", "sigmoid")}, r"the parameter must be finite"),
    ({"loss": "bce", "activations": ("sigmoid", "tanh")},
     r"loss='bce' takes probabilities: the output activation must be one of \['sigmoid', 'softmax'\]"),
    ({"l2": -0.1}, r"l2=-0.1 must be a finite number >= 0"),
    ({"l2": float("nan")}, r"l2=nan must be a finite number >= 0"),
])
def test_bad_family_option_is_rejected_with_the_field_named(changes, message):
    fields = {"sizes": (4, 5, 3), "activations": ("sigmoid", "sigmoid")} | changes
    with pytest.raises((ValueError, TypeError), match=message):
        Spec(**fields)


LABELS = SPEC.replace(loss="softmax-ce-labels", activations=("tanh", "identity"))


@pytest.mark.parametrize(("targets", "error", "message"), [
    (np.array([0, 1, 2, 3, 0, 1]), ValueError, r"Y has labels in \[0, 3\]; expected classes in \[0, 2\]"),
    (np.array([0, -1, 2, 0, 0, 1]), ValueError, r"Y has labels in \[-1, 2\]"),
    (np.array([0.0, 1.0, 2.0, 0.0, 0.0, 1.0]), TypeError, r"Y has dtype float64; loss='softmax-ce-labels' "
                                                         r"expects integer class labels of shape \(6,\)"),
    (np.array([0, 1, 2]), ValueError, r"Y has shape \(3,\); loss='softmax-ce-labels' expects class labels "
                                      r"of shape \(6,\)"),
    (np.zeros((3, 6), dtype=int), ValueError, r"Y has shape \(3, 6\)"),
])
def test_bad_class_labels_are_rejected(targets, error, message):
    params, X, _ = good()
    with pytest.raises(error, match=message):
        network.gradients(LABELS, params, X, targets)


@pytest.mark.parametrize("loss", ["bce", "bce-logits", "softmax-ce"])
def test_probability_targets_outside_zero_one_are_rejected(loss):
    params, X, Y = good()
    with pytest.raises(ValueError, match=rf"Y has values in \[.*\]; loss='{loss}' expects probabilities"):
        network.gradients(SPEC.replace(loss=loss), params, X, Y + 1.5)
