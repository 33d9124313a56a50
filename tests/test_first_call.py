"""A user layer's code that raises on every call is told before torch and jax load
(``bpcheck.user.first_call``): in-process, the same report ``check`` gives; from a fresh shell,
``bpcheck verify`` exits 1 with it and has imported neither framework."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bpcheck import UserLayer, check
from bpcheck.core.verdicts import RAISED
from bpcheck.user.first_call import first_call
from manual.layer_kinds import LAYER_KINDS
from manual.stack_network import PAIRS
from tests.fresh import BPCHECK, user_environment

#: A course-style dense layer whose backward unpacks its cache wrongly, and the same layer right.
LAYER = '''
import numpy as np
from bpcheck import UserLayer


def affine_forward(x, w, b):
    return x @ w + b, (x, w)


def affine_backward(dout, cache):
    x, w, _b = cache  # the cache holds two arrays
    return dout @ w.T, x.T @ dout, dout.sum(0)


layer = UserLayer("affine", lambda x, p: affine_forward(x, p["w"], p["b"]), affine_backward,
                  like="dense:4", parameters=("w", "b"), layout={"w": "IO"})
'''


def affine_forward(x, w, b):
    return x @ w + b, (x, w)


def affine_backward(dout, cache):
    x, w = cache
    return dout @ w.T, x.T @ dout, dout.sum(0)


def raising_backward(dout, cache):
    x, w, _b = cache  # the cache holds two arrays
    return dout @ w.T, x.T @ dout, dout.sum(0)


def layer(backward) -> UserLayer:
    return UserLayer("affine", lambda x, p: affine_forward(x, p["w"], p["b"]), backward, like="dense:4",
                     parameters=("w", "b"), layout={"w": "IO"})


def test_a_backward_that_raises_is_reported_on_the_smallest_network_as_check_reports_it():
    first = first_call(layer(raising_backward))
    assert first is not None and first.verdict == RAISED
    assert first.part == "backward" and isinstance(first.error, ValueError)
    assert "not enough values to unpack" in first.message
    assert first.counterexample is not None and first.counterexample.dtype == "float64"
    full = check(layer(raising_backward), examples=5)
    assert (full.verdict, full.message, full.part) == (RAISED, first.message, first.part)


def test_a_layer_that_runs_is_left_to_the_full_check():
    assert first_call(layer(affine_backward)) is None
    assert check(layer(affine_backward), examples=3).passed


def scale_forward(x, params, xp=None):
    return x * params["g"], x


def scale_backward(dout, x):
    raise RuntimeError("not written yet")


@pytest.mark.parametrize("layer", [
    UserLayer("scale", scale_forward, scale_backward, parameters={"g": lambda shape: shape}),
    UserLayer("scale", lambda x, params, xp: x * params["g"], scale_backward,
              parameters={"g": lambda shape: shape}),
], ids=["numpy forward alone", "forward written once against xp"])
def test_a_new_kind_of_layer_is_tried_first_too_with_the_full_checks_report(layer):
    first = first_call(layer)
    assert first is not None and first.verdict == RAISED and first.part == "backward"
    assert "scale: your backward raised RuntimeError('not written yet')" in first.message
    full = check(layer, examples=3)
    assert (full.verdict, full.message) == (RAISED, first.message)
    assert "scale" not in LAYER_KINDS and "scale" not in PAIRS  # the tables as they were


def test_verify_reports_the_crash_from_a_fresh_shell_without_importing_torch_or_jax(tmp_path):
    (tmp_path / "course_layer.py").write_text(LAYER)
    env = user_environment(tmp_path / "cache") | {"PYTHONPROFILEIMPORTTIME": "1"}
    done = subprocess.run([BPCHECK, "verify", "course_layer.py:layer"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr[-2000:]
    assert "affine: your backward raised ValueError('not enough values to unpack" in done.stdout
    assert "on the smallest network Hypothesis found: dense:4" in done.stdout
    imported = {line.rpartition("|")[2].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert "numpy" in imported and "hypothesis" in imported  # the import log was read
    assert not imported & {"torch", "jax", "jaxlib"}, sorted(imported & {"torch", "jax", "jaxlib"})



def test_check_from_a_script_reports_the_crash_without_importing_torch_or_jax(tmp_path):
    """``bpcheck.check`` loads torch and jax only where the check needs them."""
    (tmp_path / "course_layer.py").write_text(LAYER)
    script = ("import sys\nfrom bpcheck import check\nfrom course_layer import layer\n"
              "report = check(layer)\n"
              "print(report.verdict, report.part, 'torch' in sys.modules, 'jax' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env=user_environment(tmp_path / "cache"), timeout=120)
    assert done.stdout.split() == ["RAISED", "backward", "False", "False"], done.stdout + done.stderr[-2000:]


def nhwc_pool_forward(x):
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4)), x.shape


def nhwc_pool_backward(dout, shape):
    raise RuntimeError("not written yet")


def test_a_crash_names_the_network_in_the_layout_the_code_was_given():
    """An NHWC layer's RAISED report gives the sample shape as the user's code got it, beside
    bpcheck's C×H×W, in the first call's report and in the full check's alike."""
    from bpcheck.user.layer_report import layer_text

    pool = UserLayer("pool", lambda x, p: nhwc_pool_forward(x), nhwc_pool_backward,
                     like="avg_pool2d:k2", layout="NHWC")
    first = first_call(pool)
    assert first is not None and first.verdict == RAISED
    c, h, w = first.counterexample.input_shape
    said = f"(C×H×W; {h}x{w}x{c} as your code gets them)"
    assert said in layer_text(first), layer_text(first)
    assert said in layer_text(check(pool, examples=3))
