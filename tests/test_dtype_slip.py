"""A dtype slip is a note beside the gradient verdict, never instead of it: course code that
builds its gradients with ``np.zeros`` (float64) is still checked in float32, after rounding, and
a real gradient bug behind the slip is still WRONG."""

from __future__ import annotations

import numpy as np

from bpcheck import UserLayer, check
from bpcheck.core.verdicts import AGREES, WRONG


def affine_forward(x, p):
    return x @ p["w"] + p["b"], (x, p["w"])


def affine_backward(dout, cache):
    """The gradients accumulated into np.zeros, float64 whatever the inputs are."""
    x, w = cache
    dx, dw, db = np.zeros(x.shape), np.zeros(w.shape), np.zeros(w.shape[1])
    for n in range(x.shape[0]):
        dx[n] = dout[n] @ w.T
        dw += np.outer(x[n], dout[n])
        db += dout[n]
    return dx, dw, db


def affine_backward_slip(dout, cache):
    """The same, with db averaged over the batch: a missing factor N."""
    dx, dw, db = affine_backward(dout, cache)
    return dx, dw, db / dout.shape[0]


def _layer(backward) -> UserLayer:
    return UserLayer("affine", affine_forward, backward, like="dense:3", parameters={"w": "W", "b": "b"},
                     layout={"w": "IO"})


NOTE = ("your backward's dx, backward's grads['b'], backward's grads['w'] have dtype float64 in a "
        "float32 check: compared after rounding to float32")


def test_a_right_layer_with_float64_gradients_agrees_in_both_dtypes_with_a_note():
    report = check(_layer(affine_backward), examples=30)
    assert report.verdict == AGREES, report
    assert any(note.startswith(NOTE) for note in report.notes), report.notes
    assert f"note: {NOTE}" in str(report)


def test_a_gradient_bug_behind_the_dtype_slip_is_still_wrong():
    """Before, the first float32 draw stopped the check as RAISED ("dx has dtype float64")."""
    report = check(_layer(affine_backward_slip), examples=30)
    assert report.verdict == WRONG, report
    assert {row.parameter for row in report.rows} == {"dense1.b"}


def test_a_less_precise_result_is_still_refused_naming_its_dtype():
    def backward(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        return dx.astype(np.float16), dw, db

    report = check(_layer(backward), examples=5)
    assert report.verdict == "RAISED"
    assert "backward's dx: it returned an array of dtype float16" in report.message
