"""A layer of a known kind declared ``like=`` (``bpcheck.user.like``): its layouts, its calling
styles, its bad declarations (a clear error naming the argument; exit 2 from the command line)
and what its code raises or wrongly returns (RAISED, naming the part)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from bpcheck import RecordingOptimizer, UserLayer, check, object_pair
from bpcheck.core.verdicts import AGREES, RAISED, WRONG
from bpcheck.user.layouts import from_user, gate_order, to_user, user_shape
from manual.stack_text import parse_layers
from tests.assertions import run_cli

EXAMPLES = 12


def _affine(x, p):
    return x @ p["w"] + p["b"], (x, p["w"])


def _affine_backward(dout, cache):
    x, w = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)


def affine(**changes) -> UserLayer:
    return UserLayer("affine", changes.pop("forward", _affine), changes.pop("backward", _affine_backward),
                     **({"like": "dense:3", "parameters": ("w", "b"), "layout": {"w": "IO"}} | changes))


def test_a_layout_is_a_transpose_and_a_reshape_and_back():
    w = np.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5)  # OIHW
    hwio = to_user(w, "OIHW", "HWIO")
    assert hwio.shape == (4, 5, 3, 2) == user_shape(w.shape, "OIHW", "HWIO")
    assert hwio[1, 2, 0, 1] == w[1, 0, 1, 2]
    assert np.array_equal(from_user(hwio, "OIHW", "HWIO"), w)
    b = np.arange(3.0)
    assert to_user(b, "O", "111O").shape == (1, 1, 1, 3)
    assert np.array_equal(from_user(to_user(b, "O", "111O"), "O", "111O"), b)
    hwio[...] = 0  # a new array: ours is untouched
    assert w.sum() > 0


@pytest.mark.parametrize("changes, error, says", [
    ({"like": "conv3d:2"}, ValueError, "like='conv3d:2': layer 'conv3d:2': unknown layer 'conv3d'"),
    ({"like": "flatten"}, ValueError, "like='flatten': expected one layer of a kind in"),
    ({"like": "dense:3;relu"}, ValueError, "expected one layer"),
    ({"like": 3}, TypeError, "like=3: expected a layer as text"),
    ({"parameters": ("w",)}, ValueError, "parameters=('w',): dense:3 has 2 parameters ('W', 'b')"),
    ({"parameters": {"w": "W", "c": "X"}}, ValueError, "map each of your names to one of dense:3's"),
    ({"layout": "NHWC"}, ValueError, "layout='NHWC': 'NHWC' is not a data layout dense:3 takes"),
    ({"layout": {"w": "IOX"}}, ValueError, "layout['w']='IOX': dense:3's W has axes 'OI'"),
    ({"layout": {"v": "IO"}}, ValueError, "['v'] is neither 'x', 'gates' nor one of your parameters"),
    ({"like": None, "layout": "NHWC"}, ValueError, "layout='NHWC' needs like="),
    ({"like": "conv2d:2", "layout": "NTD", "parameters": ("w", "b")}, ValueError,
     "'NTD' is not a data layout"),
    ({"like": "dense:3", "rank": 3}, ValueError, "rank=3: dense:3 takes no samples of that rank"),
    ({"forward": None}, TypeError, "forward=None must be callable"),
    ({"torch": abs}, TypeError, "like= and torch=/jax= were both given"),
])
def test_a_bad_declaration_is_an_error_naming_the_argument(changes, error, says):
    with pytest.raises(error) as raised:
        affine(**changes)
    assert says in str(raised.value)


def test_without_parameters_yours_have_the_kinds_names():
    assert affine(parameters={}, layout=None).declared.names == {"W": "W", "b": "b"}


def test_a_bad_declaration_is_a_usage_error_from_the_command_line(tmp_path):
    (tmp_path / "bad_like.py").write_text(
        "from bpcheck import UserLayer\n"
        "conv = UserLayer('conv', lambda x, p: x, lambda d, c: d, like='conv2d:2,k3', parameters=('w',))\n")
    out = run_cli(["verify", f"{tmp_path / 'bad_like.py'}:conv"], 2)
    assert "parameters=('w',): conv2d:2,k3 has 2 parameters ('W', 'b')" in out


def test_your_code_never_changes_our_arrays():
    def forward(x, p):
        out, cache = _affine(x, p)
        x[...], p["w"][...] = 7.0, 7.0  # the user's code scribbles on what it was given
        return out, cache

    layer = affine(forward=forward)
    pair_forward, pair_backward = layer.pair()
    x, params = np.ones((3, 2)), {"W": np.ones((3, 2)), "b": np.zeros(3)}
    before = copy.deepcopy((x, params))
    out, cache = pair_forward(x, params, parse_layers("dense:3")[0])
    dx, grads = pair_backward(np.ones_like(out), cache)
    assert np.array_equal(x, before[0]) and all(np.array_equal(params[k], before[1][k]) for k in params)
    assert dx.shape == x.shape and grads["W"].shape == (3, 2) and grads["b"].shape == (3,)


def test_a_right_layer_agrees_and_a_missing_factor_is_wrong_in_your_names():
    assert check(affine(), EXAMPLES).verdict == AGREES
    report = check(affine(backward=lambda d, c: (*_affine_backward(d, c)[:2], d.mean(axis=0))), EXAMPLES)
    assert report.verdict == WRONG and "WRONG on dense1.b (your b)" in report.message
    assert "your layer is dense1 (dense:3)" in str(report)
    assert "dense1 as your code gets them (your names and layouts)" in str(report)
    assert set(report.yours) == {"x", "w", "b"} and report.yours["w"].shape == report.counterexample.params[
        "dense1.W"].T.shape  # w stored (in, out)


def test_what_your_code_raises_or_wrongly_returns_names_the_part():
    def backward(dout, cache):
        raise ZeroDivisionError("boom")

    report = check(affine(backward=backward), EXAMPLES)
    assert report.verdict == RAISED and report.part == "backward" and "boom" in report.message
    two = check(affine(backward=lambda d, c: _affine_backward(d, c)[:2]), EXAMPLES)
    assert two.verdict == RAISED and "(dx, dw, db) in the order of parameters=" in two.message


def test_a_forward_that_computes_something_else_is_named():
    def twice(dout, cache):  # the gradient of the forward below: consistent, but not dense's
        dx, dw, db = _affine_backward(dout, cache)
        return 2 * dx, 2 * dw, db

    report = check(affine(forward=lambda x, p: (x @ (2 * p["w"]) + p["b"], (x, p["w"])), backward=twice,
                          layout={"x": "NC", "w": "IO"}), EXAMPLES)
    assert report.verdict == WRONG and report.forward_differs
    assert ("your backward is the gradient of your own forward, but that forward differs from dense:3 "
            "(torch's and jax's)") in report.message


def test_a_functional_backward_gets_dout_x_and_params():
    def backward(dout, x, params):
        return dout @ params["w"].T, {"w": x.T @ dout, "b": dout.sum(axis=0)}

    assert check(affine(forward=lambda x, p: x @ p["w"] + p["b"], backward=backward), EXAMPLES).passed


class Affine:
    """An object layer that makes its parameters on its first call; gradients as attributes."""

    def __init__(self):
        self.W = self.b = None

    def forward(self, x):
        if self.W is None:
            self.W, self.b = np.zeros((x.shape[1], 3)), np.zeros(3)
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout):
        self.dW, self.db = self.x.T @ dout, dout.sum(axis=0)
        return dout @ self.W.T


def test_an_object_layer_made_on_its_first_call_agrees():
    layer = UserLayer("affine", *object_pair(Affine), like="dense:3", parameters=("W", "b"),
                      layout={"W": "IO"})
    assert check(layer, EXAMPLES).passed


def test_the_recording_optimizer_records_by_identity_and_steps():
    recorder = RecordingOptimizer()
    w, b = np.ones(3), np.ones(2)
    recorder.params = {"W": w, "b": b}
    assert copy.copy(recorder) is recorder
    stepped = recorder.update(w, np.full(3, 2.0))
    assert np.array_equal(stepped, w - RecordingOptimizer.LR * 2.0)
    assert np.array_equal(recorder.recorded["W"], np.full(3, 2.0))
    with pytest.raises(ValueError, match="not one of the layer's parameters"):
        recorder.update(np.ones(5), np.ones(5))


def _steps_forward(x, p):  # x (N, D, T): a dense layer at every step, channels first
    return np.einsum("ndt,md->nmt", x, p["w"]) + p["b"][None, :, None], x


def _steps_backward(dout, x, p):
    return np.einsum("nmt,md->ndt", dout, p["w"]), np.einsum("nmt,ndt->md", dout, x), dout.sum(axis=(0, 2))


def test_a_sequence_layer_in_n_d_t_is_drawn_on_sequences_and_checked():
    def averaged(dout, x, p):  # db averaged over the steps: a slip
        dx, dw, db = _steps_backward(dout, x, p)
        return dx, dw, db / x.shape[2]

    layer = UserLayer("steps", _steps_forward, _steps_backward, like="dense:3", parameters=("w", "b"),
                      layout="NDT")
    assert layer.declared.ranks == (2,) and affine().declared.ranks == (1,)  # (N, D) code: no (N, T, D)
    assert check(layer, EXAMPLES).passed
    slip = check(UserLayer("steps", _steps_forward, averaged, like="dense:3", parameters=("w", "b"),
                           layout="NDT"), EXAMPLES)
    assert slip.verdict == WRONG and "dense1.b (your b)" in slip.message


def _layernorm(x, p):  # over every axis of a sample, whatever its layout; γ and β of a sample's shape
    axes = tuple(range(1, x.ndim))
    std = np.sqrt(x.var(axis=axes, keepdims=True) + 1e-5)
    x_hat = (x - x.mean(axis=axes, keepdims=True)) / std
    return p["gamma"] * x_hat + p["beta"], (x_hat, p["gamma"], std, axes)


def _layernorm_backward(dout, cache, x_hat_term=True):
    x_hat, gamma, std, axes = cache
    g = dout * gamma
    through_x_hat = x_hat * (g * x_hat).mean(axis=axes, keepdims=True) if x_hat_term else 0
    dx = g - g.mean(axis=axes, keepdims=True) - through_x_hat
    return dx / std, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


def test_a_layer_norm_in_nhwc_gets_gamma_in_its_sample_layout():
    layer = UserLayer("ln", _layernorm, _layernorm_backward, like="layer_norm", layout="NHWC")
    assert check(layer, EXAMPLES).passed
    slip = UserLayer("ln", _layernorm, lambda d, c: _layernorm_backward(d, c, False), like="layer_norm",
                     layout="NHWC")
    report = check(slip, EXAMPLES)
    assert report.verdict == WRONG
    c, h, w = report.counterexample.x.shape[1:]  # the header's samples are C×H×W: said so, and yours
    assert f"on {c}x{h}x{w} samples (C×H×W; {h}x{w}x{c} as your code gets them)" in str(report)


def test_a_layer_that_takes_one_rank_of_several_is_told_to_say_which():
    def images_only(x, p):
        _, _, _, _ = x.shape  # raises on (N, F)
        return x * p["gamma"][:, None, None] + p["beta"][:, None, None], None

    report = check(UserLayer("scale", images_only, lambda d, c: d, like="batch_norm"), EXAMPLES)
    assert report.verdict == RAISED and "bpcheck draws batch_norm on (N, F) and images" in report.message
    assert "rank=1 or layout='NCHW'" in report.message
    images = UserLayer("scale", images_only, lambda d, c: d, like="batch_norm", layout="NCHW")
    assert images.declared.ranks == (3,)


def test_a_layer_that_raises_for_another_reason_gets_no_rank_hint():
    def broken(x, p):
        raise RuntimeError("my bug")

    report = check(UserLayer("scale", broken, lambda d, c: d, like="batch_norm"), EXAMPLES)
    assert report.verdict == RAISED and "my bug" in report.message and "rank=" not in report.message


def test_an_output_in_another_layout_is_named_with_the_layout_due():
    def nchw(x, p):  # declared NHWC, returns (N, C, H, W)
        return np.zeros((x.shape[0], 2, x.shape[1] - 2, x.shape[2] - 2), x.dtype), None

    report = check(UserLayer("c", nchw, lambda d, c: (d, d, d), like="conv2d:2,k3", parameters=("w", "b"),
                             layout={"x": "NHWC", "w": "HWIO"}), EXAMPLES)
    assert report.verdict == RAISED and "forward's out: it returned an array of shape" in report.message
    assert "expected an ndarray of your NHWC layout's shape" in report.message


def test_a_batch_letter_repeats_for_each_sample_and_its_gradient_is_the_sum():
    h0 = np.array([1.0, 2.0, 3.0])
    per_sample = to_user(h0, "H", "NH", n=4)
    assert per_sample.shape == (4, 3) == user_shape(h0.shape, "H", "NH", n=4)
    assert np.array_equal(from_user(np.ones((4, 3)), "H", "NH"), np.full(3, 4.0))


def test_gates_are_blocks_put_in_your_order_and_back():
    w = np.arange(8.0).reshape(8, 1)  # gates i f g o of H = 2, torch's order
    mine = gate_order(w, 0, "ifgo", "ifog")
    assert mine[:, 0].tolist() == [0, 1, 2, 3, 6, 7, 4, 5]
    assert np.array_equal(gate_order(mine, 0, "ifog", "ifgo"), w)


@pytest.mark.parametrize("changes, says", [
    ({"parameters": {"b": ("b_ih",), "W": "W_ih", "U": "W_hh", "h0": "h0"}}, "(or a tuple of them, summed)"),
    ({"layout": {"gates": "ifgx"}}, "layout['gates']='ifgx': lstm:2's gates are 'ifgo'"),
    ({"like": "rnn:2", "layout": {"gates": "i"}}, "rnn:2's gates are 'none'"),
])
def test_a_recurrent_declaration_that_does_not_fit_is_an_error(changes, says):
    with pytest.raises(ValueError) as raised:
        UserLayer("cell", _affine, _affine_backward, **({"like": "lstm:2"} | changes))
    assert says in str(raised.value)
