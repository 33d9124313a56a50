"""A new layer kind is one record, one manual pair, one torch and one jax witness and one
strategy entry, registered by name (``bpcheck.user.registry``): no edit in the engine. Shown
with a per-channel PReLU, out = x where x > 0, else a_c·x."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax.numpy as jnp
import numpy as np
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bpcheck.core.verdicts import AGREES, DIFFERS, INCONCLUSIVE
from bpcheck.layers import strategies
from bpcheck.layers.compare import StackRule, compare_stack, swapped
from bpcheck.layers.problem import random_problem
from bpcheck.layers.strategies import away_from_kinks_and_ties, single_layer_problems
from bpcheck.user.registry import REGISTRY
from manual import stack_network
from manual.layer_kinds import LAYER_KINDS, LayerKind
from manual.stack import Stack
from reference import jax_stack, torch_stack


def _per_channel(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """a (C,) shaped to broadcast over x (N, C, …)."""
    return a.reshape((1, -1) + (1,) * (x.ndim - 2))


def prelu_forward(x, params, layer):
    """out = x (x > 0), a_c·x (x ≤ 0)."""
    a = _per_channel(params["a"], x)
    return np.where(x > 0, x, a * x), (x, a)


def prelu_backward(dout, cache):
    """∂L/∂x = dout (x > 0), a_c·dout (x ≤ 0); ∂L/∂a_c = Σ over all but the channel axis of
    x·dout where x ≤ 0."""
    x, a = cache
    axes = (0, *range(2, x.ndim))
    return np.where(x > 0, dout, a * dout), {"a": np.sum(np.where(x > 0, 0.0, x * dout), axis=axes)}


def prelu_backward_wrong(dout, cache):
    """A slip: the negative side's slope forgotten in ∂L/∂x."""
    dx, grads = prelu_backward(dout, cache)
    x, _ = cache
    return np.where(x > 0, dx, dout), grads


@dataclass(frozen=True)
class NewKind:
    """What a new built-in kind registers: the five entries of ``REGISTRY``'s layer tables."""

    kind: ClassVar[str] = "layer"
    name: str = "prelu"

    def entries(self) -> dict[str, object]:
        return {
            "kinds": LayerKind("prelu", "prelu", parameters=("a",), kinks=(0.0,),
                               parameter_shapes=lambda shape: {"a": shape[:1]},
                               output_shape=lambda shape: shape),
            "pairs": (prelu_forward, prelu_backward),
            "torch": lambda x, p: F.prelu(x, p["a"]),
            "jax": lambda x, p: jnp.where(x > 0, x, p["a"].reshape((1, -1) + (1,) * (x.ndim - 2)) * x),
            "texts": lambda draw, shape: "prelu",
        }


PRELU = NewKind()
TABLES = (LAYER_KINDS, stack_network.PAIRS, torch_stack.USER_LAYERS, jax_stack.USER_LAYERS,
          strategies.LAYER_TEXTS)


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_a_registered_kind_is_drawn_alone_and_agrees_with_both_witnesses(data):
    with REGISTRY.scoped(PRELU):
        dtype = data.draw(st.sampled_from(["float64", "float32"]))
        problem = data.draw(single_layer_problems("prelu", dtype))
        assume(away_from_kinks_and_ties(problem))
        reports, witness_rows, truth = compare_stack(problem)
    assert reports[0].verdict == AGREES or (reports[0].verdict == INCONCLUSIVE and truth.saturation), \
        [row for row in reports[0].rows if row.differs]
    assert not [row for row in witness_rows if row.differs]
    assert {row.parameter for row in reports[0].rows} == {"prelu1.a", "x"}


def test_a_registered_kind_agrees_inside_a_network_and_its_wrong_twin_differs_on_x_only():
    stack_text = "conv2d:2,k3,p1;prelu;flatten;dense:3"
    wrong = StackRule("prelu_slope_forgotten", "", claims_correct=False,
                      pairs=swapped({"prelu": (prelu_forward, prelu_backward_wrong)}))
    with REGISTRY.scoped(PRELU):
        problem = random_problem(Stack(stack_text, (1, 5, 5)), 4, seed=3)
        (right, slip), _, _ = compare_stack(problem, [StackRule("derived", ""), wrong])
    assert right.verdict == AGREES
    assert slip.verdict == DIFFERS
    # the slip is in ∂L/∂x of prelu: it reaches conv1's gradients and x, not prelu's a or dense's
    differing = {row.parameter for row in slip.rows if row.differs}
    assert differing == {"conv1.W", "conv1.b", "x"}, differing


def test_registering_a_kind_leaves_every_table_as_it_was():
    before = [dict(table) for table in TABLES]
    with REGISTRY.scoped(PRELU):
        assert all("prelu" in table for table in TABLES)
    assert [dict(table) for table in TABLES] == before
