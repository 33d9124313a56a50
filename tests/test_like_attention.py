"""Several named inputs (``bpcheck.user.like_inputs``): a user's cross-attention, written as a
course writes it (examples/attention_layers.py), declared ``like="attention:h2"`` with
``inputs=("q", "k", "v")``: the right one agrees, each wrong twin is WRONG with the blame on the
inputs and parameters its slip touches, each gradient under the user's own name; other calling
styles (a dict of inputs, a functional backward, query and memory) and layouts; and what a
wrong declaration or result says."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from bpcheck import UserLayer, check
from bpcheck.core.verdicts import AGREES, RAISED, WRONG

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from examples import attention_layers as ex  # noqa: E402

sys.path.remove(str(ROOT))

EXAMPLES = 10


def _blamed(report) -> set[str]:
    return {row.parameter for row in report.rows if row.quantity == "gradient"}


def test_a_correct_cross_attention_agrees_on_each_input_and_parameter():
    report = check(ex.cross_attention, EXAMPLES)
    assert report.verdict == AGREES, str(report)
    assert report.examples >= EXAMPLES and "q (N, Tq, D) as query, k, v (N, Tk, D)" in report.message


@pytest.mark.parametrize("twin, blamed, spared", [
    ("cross_attention_diagonal", {"q", "k"}, {"v", "Wv", "bv", "Wo", "bo"}),
    ("cross_attention_swapped", {"k", "v"}, {"q", "Wq", "bq", "Wo", "bo"}),
    ("cross_attention_unscaled", {"q", "k"}, {"v", "Wv", "bv", "Wo", "bo"}),
])
def test_each_wrong_twin_is_wrong_on_the_inputs_its_slip_touches(twin, blamed, spared):
    report = check(getattr(ex, twin), EXAMPLES)
    assert report.verdict == WRONG, str(report)
    assert blamed <= _blamed(report) and not spared & _blamed(report), _blamed(report)
    assert "your backward is not the gradient of your own forward" in report.message
    assert all(f"d{name}" in report.message for name in blamed), report.message
    assert "as your code gets them" in str(report) and "q (" in str(report)


def _dict_forward(inputs, params):
    return ex.attention_forward(inputs["x"], inputs["memory"], inputs["memory"], params)


def _functional_backward(dout, x, memory, params, slip=""):
    """Backward(dout, x, memory, params): recomputes the forward; memory is key and value."""
    dq, dk, dv, grads = ex.attention_backward(dout, ex.attention_forward(x, memory, memory, params)[1], slip)
    return {"x": dq, "memory": dk + dv}, grads


def _memory_layer(backward, **options) -> UserLayer:
    return UserLayer("memory_attention", _dict_forward, backward, like="attention:h2",
                     inputs=("x", "memory"), parameters=ex.PARAMETERS, layout=ex.LAYOUT | options)


def test_a_dict_of_inputs_a_functional_backward_and_a_memory_that_is_key_and_value():
    assert check(_memory_layer(_functional_backward), EXAMPLES).verdict == AGREES
    report = check(_memory_layer(lambda d, x, m, p: _functional_backward(d, x, m, p, "swapped")), EXAMPLES)
    assert report.verdict == WRONG and "memory" in _blamed(report) and "x" not in _blamed(report), str(report)


def test_an_input_in_its_own_layout_is_transposed_by_bpcheck():
    def forward(inputs, params):  # memory stored (N, D, T)
        return _dict_forward({"x": inputs["x"], "memory": inputs["memory"].transpose(0, 2, 1)}, params)

    def backward(dout, x, memory, params):
        grads, weights = _functional_backward(dout, x, memory.transpose(0, 2, 1), params)
        return grads | {"memory": grads["memory"].transpose(0, 2, 1)}, weights

    layer = UserLayer("memory_ndt", forward, backward, like="attention:h2", inputs=("x", "memory"),
                      parameters=ex.PARAMETERS, layout=ex.LAYOUT | {"memory": "NDT"})
    assert check(layer, EXAMPLES).verdict == AGREES


def test_a_backward_without_one_inputs_gradient_is_named():
    def backward(dout, cache):
        dq, dk, _, grads = ex.attention_backward(dout, cache)
        return {"q": dq, "k": dk}, grads

    report = check(ex._cross(backward), EXAMPLES)
    said = "expected one for each input ['q', 'k', 'v']"
    assert report.verdict == RAISED and said in report.message, report.message


def test_a_gradient_of_the_wrong_inputs_shape_is_named():
    def backward(dout, cache):  # dk given the query's shape
        dq, _, dv, grads = ex.attention_backward(dout, cache)
        return dq, dq, dv, grads

    report = check(ex._cross(backward), EXAMPLES)
    assert report.verdict == RAISED and "dk" in report.message, report.message
    assert "input k's shape (2, 2, " in report.message, report.message


@pytest.mark.parametrize("options, argument", [
    ({"inputs": ("q", "k", "v"), "like": "dense:3"}, "inputs="),
    ({"inputs": ("q", "q", "v")}, "inputs="),
    ({"inputs": ("q", "Wk", "v")}, "inputs="),
    ({"inputs": "qkv"}, "inputs="),
    ({"inputs": ("q", "k", "v"), "layout": {"x": "NDT"}}, "layout="),
    ({"inputs": ("q", "k", "v"), "layout": {"k": "NDX"}}, "layout['k']"),
    ({"inputs": ("q", "k"), "forward": ex.attention_forward}, "forward="),
])
def test_a_wrong_declaration_names_its_argument(options, argument):
    given = {"like": "attention:h2", "parameters": ex.PARAMETERS, "forward": _dict_forward,
             "backward": ex.attention_backward} | options
    with pytest.raises((ValueError, TypeError), match=argument.replace("[", r"\[")):
        UserLayer("bad", given.pop("forward"), given.pop("backward"), **given)


def test_the_callers_arrays_are_not_changed():
    from hypothesis import given, settings

    from bpcheck.user.inputs_check import inputs_problems, user_run

    @settings(max_examples=3, database=None)
    @given(inputs_problems(ex.cross_attention))
    def run(problem):
        given = {**problem.arrays, **problem.params}
        before = {k: v.copy() for k, v in given.items()}
        user_run(ex.cross_attention, problem, problem.dtype)
        assert all(np.array_equal(before[k], v) for k, v in given.items())

    run()


def test_finite_differences_step_every_entry_of_a_transposed_array():
    """A parameter in the user's layout (W stored (in, out)) reaches the differences transposed:
    each step must move the array the loss reads (it was taken on a copy: D_h = 0)."""
    from reference.differences import central_differences

    a = np.arange(1.0, 7.0).reshape(2, 3).T  # Fortran order
    fd, _ = central_differences(lambda v: float(np.sum(v["a"] ** 2)), {"a": a}, 1, 1)
    np.testing.assert_allclose(fd["a"], 2 * a, rtol=1e-6)


def _plain_forward(q, k, v, params):
    """softmax(q kᵀ/√d) v, causal (query t sees keys ≤ t), no projections."""
    scores = q @ k.transpose(0, 2, 1) * q.shape[-1] ** -0.5
    scores = np.where(np.triu(np.ones(scores.shape[1:], bool), 1), -np.inf, scores)
    e = np.exp(scores - scores.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    return p @ v, (q, k, v, p)


def _plain_backward(dout, cache):
    q, k, v, p = cache
    dp = dout @ v.transpose(0, 2, 1)
    ds = p * (dp - (p * dp).sum(-1, keepdims=True)) * q.shape[-1] ** -0.5
    return ds @ k, ds.transpose(0, 2, 1) @ q, p.transpose(0, 2, 1) @ dout


def test_causal_attention_without_projections_and_its_one_key_query():
    """No parameters: the backward returns (dq, dk, dv). A causal query of one step sees one
    key, whose gradients are exactly 0 (jax's are rounding about it): such draws are not made."""
    layer = UserLayer("plain", _plain_forward, _plain_backward, like="attention:h1,causal,noproj",
                      inputs=("q", "k", "v"))
    assert check(layer, 20).verdict == AGREES


def test_a_library_object_with_three_inputs_and_weights_made_on_its_first_call():
    """examples.attention_layers.MultiHeadAttention: forward(query, key, value), backward(dout)
    → (dq, dk, dv), weights (out, in) in self.params, gradients in self.grads."""
    assert check(ex.multi_head, EXAMPLES).verdict == AGREES
    report = check(ex.multi_head_unscaled, EXAMPLES)
    assert report.verdict == WRONG and {"query", "key", "wq", "wk"} <= _blamed(report), str(report)
    assert not {"value", "wv", "bv", "wo", "bo"} & _blamed(report), str(report)


def test_length_pins_the_query_and_the_keys_steps():
    """A backward that drops every key after the 5th (a window of 5, as a truncated loop has)
    is right on every drawn length (≤ 4) and WRONG at length=8."""
    def windowed(dout, cache):
        dq, dk, dv, grads = ex.attention_backward(dout, cache)
        dk[:, 5:], dv[:, 5:] = 0.0, 0.0
        return dq, dk, dv, grads

    assert check(ex._cross(windowed), EXAMPLES).verdict == AGREES
    pinned = UserLayer("cross_attention", ex.attention_forward, windowed, like="attention:h2",
                       inputs=("q", "k", "v"), parameters=ex.PARAMETERS, layout=ex.LAYOUT, length=8)
    report = check(pinned, EXAMPLES)
    assert report.verdict == WRONG and {"k", "v"} <= _blamed(report), str(report)
    assert "q (2, 8," in str(report) and "k (2, 8," in str(report)


KEY_BIASED = ("Wq", "bq", "Wk", "bk", "Wv", "bv", "Wo", "bo")  # a key bias, as torch's layer has


def _key_biased(backward, inputs=("q", "k", "v"), forward=ex.attention_forward) -> UserLayer:
    return UserLayer("key_biased", forward, backward, like="attention:h2", inputs=inputs,
                     parameters=KEY_BIASED, layout=ex.LAYOUT)


def test_a_key_bias_is_given_and_its_gradient_held_to_zero():
    """The softmax removes a key bias: bpcheck gives it values and holds its gradient to 0 within
    the rounding of Σ dK; a slip (db_k from dQ) is WRONG on it alone."""
    report = check(_key_biased(ex.attention_backward), EXAMPLES)
    assert report.verdict == AGREES, str(report)
    report = check(_key_biased(lambda d, c: ex.attention_backward(d, c, "key_bias")), EXAMPLES)
    assert report.verdict == WRONG and {row.parameter for row in report.rows} == {"bk"}, str(report)
    assert "gradient (exactly 0) bk" in str(report) and "WRONG on bk" in report.message


def test_self_attention_with_a_key_bias_takes_one_named_input():
    layer = _key_biased(ex.self_attention_backward, ("x",), lambda x, p: ex.attention_forward(x, x, x, p))
    assert check(layer, EXAMPLES).verdict == AGREES
    with pytest.raises(ValueError, match=r"parameters=.*a key bias is checked with inputs="):
        UserLayer("key_biased", ex.attention_forward, ex.attention_backward, like="attention:h2",
                  parameters=KEY_BIASED)


def test_the_jax_witness_is_float64_when_it_is_the_first_jax_a_process_runs(tmp_path):
    """jax_run makes its arrays after importing reference.jax_stack (which switches float64 on):
    made before, in a process where nothing had, they were float32 and its vjp refused dout."""
    import subprocess

    from tests.fresh import user_environment

    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "from hypothesis import find\n"
            "from bpcheck.user.inputs_check import inputs_problems\n"
            "from bpcheck.user.inputs_witnesses import jax_run\n"
            "from examples.attention_layers import cross_attention as layer\n"
            "problem = find(inputs_problems(layer), lambda p: True)\n"
            "print(jax_run(layer.declared, problem)['Wq'].dtype)\n")
    done = subprocess.run([sys.executable, "-c", code, str(ROOT)], env=user_environment(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "float64", done.stderr[-2000:]
