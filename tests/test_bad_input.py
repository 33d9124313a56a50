"""Bad input raises a clear error naming the argument (and the expected shape), before any
work: shapes and dtypes at every entry point, specs, targets, learning rates and overflow,
penalties, parameters an optimizer cannot move; accepted inputs stay intact."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given

from bpcheck.mlp.problem import Problem
from bpcheck.mlp.strategies import problems
from manual import network, optim
from manual.network import Overflow
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
    ({"activations": ("sigmoid",)}, r"activations has 1 name; .* has 2 layers, so expected 2"),
    ({"loss": "hinge"}, r"loss='hinge' is unknown"),
    ({"bias": "none"}, r"bias='none' is unknown; expected one of \['node', 'vector'\]"),
    ({"layout": "diagonal"}, r"layout='diagonal' is unknown"),
    ({"dtype": "float16"}, r"dtype='float16' is unknown"),
    ({"activations": ("softmax", "sigmoid")}, r"activations\[0\]='softmax': softmax is allowed only at the "
                                             r"output layer \(activations\[1\]\)"),
    ({"activations": ("leaky_relu:x", "sigmoid")},
     r"activations\[0\]='leaky_relu:x': expected leaky_relu:<number>"),
    ({"activations": ("tanh:2", "sigmoid")}, r"activations\[0\]='tanh:2': tanh takes no parameter"),
    ({"activations": ("leaky_relu:inf", "sigmoid")}, r"the parameter must be finite"),
    ({"loss": "bce", "activations": ("sigmoid", "tanh")},
     r"loss='bce' takes probabilities: the output activation must be one of \['sigmoid', 'softmax'\]"),
    ({"l2": -0.1}, r"l2=-0.1 must be a finite number >= 0"),
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


LINEAR = SPEC.replace(activations=("identity", "identity"))  # nothing saturates: values grow


def frozen(*arrays: np.ndarray) -> list[np.ndarray]:
    """Copies of the arrays, which are made read-only: any in-place write now raises."""
    before = [a.copy() for a in arrays]
    for a in arrays:
        a.flags.writeable = False
    return before


@entry_points
def test_missing_targets_are_named(call):
    params, X, _ = good()
    with pytest.raises(TypeError, match=r"Y is None; loss='half-sse' needs targets of shape \(3, N\)"):
        call(SPEC, params, X, None)


def test_missing_class_labels_are_named():
    params, X, _ = good()
    labels = SPEC.replace(loss="softmax-ce-labels", activations=("tanh", "identity"))
    with pytest.raises(TypeError, match=r"Y is None; loss='softmax-ce-labels' needs targets of shape \(N,\)"):
        network.gradients(labels, params, X, None)
    with pytest.raises(TypeError, match=r"Y is None"):
        Problem(labels, params, X, None, 0.1)


def test_sgd_step_accepts_nested_lists_like_gradients():
    params, X, Y = good()
    lists = {name: value.tolist() for name, value in params.items()}
    before = copy.deepcopy((lists, X.tolist(), Y.tolist()))
    from_lists = network.sgd_step(SPEC, lists, X.tolist(), Y.tolist(), 0.1)
    from_arrays = network.sgd_step(SPEC, params, X, Y, 0.1)
    for name, value in from_arrays.items():
        np.testing.assert_array_equal(from_lists[name], value)
    assert (lists, X.tolist(), Y.tolist()) == before
    with pytest.raises(TypeError, match=r"params\['W1'\] has dtype float64; the spec asks for float32"):
        network.sgd_step(SPEC.replace(dtype="float32"), lists, X.tolist(), Y.tolist(), 0.1)


@pytest.mark.parametrize(("scale", "message"), [
    (1e200, r"^the backward pass overflows float64 at layer 2 \(∂L/∂W2\): X, Y or the weights are "
            r"too large$"),
    (1e308, r"^the forward pass overflows float64 at layer 1 \(z1\): X or the weights are too large$"),
])
def test_an_overflowing_pass_is_an_error_naming_where(scale, message):
    params, X, Y = good()
    params["W1"] = np.ones_like(params["W1"])
    X = np.full_like(X, scale)
    before = frozen(X, Y, *params.values())
    for call in (network.gradients, lambda *args: network.sgd_step(*args, 0.1)):
        with pytest.raises(Overflow, match=message):
            call(LINEAR, params, X, Y)
    for original, now in zip(before, [X, Y, *params.values()], strict=True):
        np.testing.assert_array_equal(now, original)


def test_an_overflowing_loss_is_an_error():
    params, X, Y = good()
    with pytest.raises(Overflow, match=r"^the loss overflows float64 at L: l2, X, Y or the weights are"):
        network.loss(LINEAR, params, X * 1e200, Y)


@pytest.mark.parametrize(("dtype", "lr", "message"), [
    ("float64", 1e308, r"^lr=1e\+308: the SGD step overflows float64 at params\['W1'\]: lr or the "
                       r"gradient is too large$"),
    ("float32", 1e39, r"^lr=1e\+39: the SGD step overflows float32 at params\['W1'\]"),
])
def test_a_learning_rate_that_overflows_the_step_is_named(dtype, lr, message):
    params, X, Y = good()
    cast = {name: value.astype(dtype) for name, value in params.items()}
    with pytest.raises(Overflow, match=message):
        network.sgd_step(LINEAR.replace(dtype=dtype), cast, X.astype(dtype), Y.astype(dtype), lr)


def test_overflow_is_a_value_error_and_saturation_is_not_overflow():
    assert issubclass(Overflow, ValueError) and issubclass(Overflow, FloatingPointError)
    params, X, Y = good()
    grads = network.gradients(SPEC, params, X * 1e200, Y)  # sigmoid saturates: finite, no warning
    assert all(np.isfinite(g).all() for g in grads.values())


@pytest.mark.parametrize(("l2", "expected"), [
    (np.float32(0.1), float(np.float32(0.1))), (np.float64(0.25), 0.25), (np.int64(2), 2.0), (1, 1.0),
])
def test_numpy_real_penalties_are_accepted_as_floats(l2, expected):
    spec = SPEC.replace(l2=l2)
    assert spec.l2 == expected and type(spec.l2) is float


@pytest.mark.parametrize("l2", [np.bool_(True), True, np.float32("nan"), np.complex128(1), "0.1"])
def test_other_penalties_are_refused(l2):
    with pytest.raises(ValueError, match=r"l2=.* must be a finite number >= 0"):
        Spec((4, 5, 3), ("sigmoid", "sigmoid"), l2=l2)


def optimizer_inputs(name="adam"):
    params = {"W": np.array([[0.5, -1.0]]), "b": np.array([0.1])}
    grads = {"W": np.array([[0.2, 0.3]]), "b": np.array([-0.4])}
    return params, grads, optim.init(name, params)


@pytest.mark.parametrize("name", list(optim.OPTIMIZERS))
@pytest.mark.parametrize(("key", "value", "error", "message"), [
    ("W", np.array([[1, 2]]), TypeError, r"params\['W'\] has dtype int64; expected real floating point"),
    ("b", np.array([True]), TypeError, r"params\['b'\] has dtype bool; expected real floating point"),
    ("W", np.array([[1j, 2]]), TypeError, r"params\['W'\] has dtype complex128; expected real"),
    ("b", np.array([np.nan]), ValueError, r"params\['b'\] contains NaN or Inf"),
    ("W", np.array([[np.inf, 0.0]]), ValueError, r"params\['W'\] contains NaN or Inf"),
])
def test_an_optimizer_refuses_parameters_it_cannot_update(name, key, value, error, message):
    params, grads, state = optimizer_inputs(name)
    params[key] = value
    before = frozen(*params.values(), *grads.values())
    with pytest.raises(error, match=message):
        optim.step(name, params, grads, state)
    with pytest.raises(error, match=message):
        optim.init(name, params)
    for original, now in zip(before, [*params.values(), *grads.values()], strict=True):
        np.testing.assert_array_equal(now, original)


def test_an_optimizer_refuses_non_real_gradients_and_non_dict_parameters():
    params, grads, state = optimizer_inputs()
    with pytest.raises(TypeError, match=r"grads\['b'\] has dtype complex128; expected real numbers"):
        optim.step("adam", params, grads | {"b": np.array([1j])}, state)
    with pytest.raises(TypeError, match=r"params must be a dict of arrays, got list"):
        optim.step("adam", [params["W"]], grads, state)
    optim.step("adam", params, {key: value.tolist() for key, value in grads.items()}, state)  # lists are fine
