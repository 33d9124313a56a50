"""One user side for your own layer: the guard, the error class and the registry that
activations and losses have (``bpcheck.user.guards``, ``UserCodeError``, ``REGISTRY.scoped``)."""

from __future__ import annotations

import time

import numpy as np
import pytest

import bpcheck.user.layer
from bpcheck import check
from bpcheck.core.user_code import UserCodeError
from bpcheck.core.verdicts import RAISED
from bpcheck.user.registry import REGISTRY
from manual.layer_kinds import LAYER_KINDS, Layer
from manual.stack_network import PAIRS
from reference import jax_stack, torch_stack
from tests.test_user_layer import _affine_backward, layer


def _sleepy_backward(dout, cache):
    time.sleep(30)
    return _affine_backward(dout, cache)


def test_a_backward_that_does_not_return_is_stopped_at_the_time_limit():
    """As an activation's derivative is (tests/test_hostile_api.py)."""
    start = time.monotonic()
    report = check(layer(_sleepy_backward), 5, time_limit=0.5)
    assert time.monotonic() - start < 20
    assert report.verdict == RAISED and report.part == "backward", str(report)
    assert "time limit of 0.5 s" in report.message and "arguments of shapes (" in report.message


def test_a_layers_code_raises_the_one_error_class_of_user_code():
    assert not hasattr(bpcheck.user.layer, "UserLayerError")
    forward, _ = layer(forward=lambda x, p: (_ for _ in ()).throw(KeyError("three"))).pair()
    with pytest.raises(UserCodeError) as error:
        forward(np.ones((2, 3, 2, 2)), {"gamma": np.ones(3), "beta": np.zeros(3)}, Layer("affine"))
    assert error.value.part == "forward" and isinstance(error.value.error, KeyError)


def test_a_layer_scoped_in_the_registry_is_gone_after_the_block_even_when_it_raises():
    tables = (LAYER_KINDS, PAIRS, torch_stack.USER_LAYERS, jax_stack.USER_LAYERS)
    with pytest.raises(RuntimeError, match="inside"), REGISTRY.scoped(layer()):
        assert all("affine" in table for table in tables)
        raise RuntimeError("inside the block")
    assert not any("affine" in table for table in tables)
