"""The Python API refuses what it cannot compute — missing targets, overflow, parameters an
optimizer cannot move — with an error naming the argument; accepted inputs stay intact."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from bpcheck.compare import Problem
from manual import network, optim
from manual.network import Overflow
from manual.spec import Spec
from tests.test_bad_input import ENTRY_POINTS, SPEC, good

entry_points = pytest.mark.parametrize("call", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
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
