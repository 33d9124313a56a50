"""The jax witness pads to buckets to compile once per structure (and optimizer steps run on one
padded vector); padding changes no result."""

from __future__ import annotations

import jax
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bpcheck.mlp.compare import ask_witnesses
from bpcheck.mlp.strategies import problems, specs
from manual.spec import LOSSES, Spec, param_shapes, takes_probabilities, target_kind
from reference import jax_ref, torch_ref
from reference.flat import flattened
from tests.assertions import describe_problem


def test_x64_is_really_on():
    jax_ref.require_x64()
    assert jax.numpy.asarray(1.0).dtype == np.float64
    params = {"W1": np.ones((1, 2)), "W2": np.ones((1, 2))}
    grads = jax_ref.gradients(Spec((1, 1, 1), ("sigmoid",) * 2), params, np.ones((1, 1)), np.ones((1, 1)))
    assert grads["W1"].dtype == np.float64


# Each new shape compiles the plain jax.grad once (~0.2 s), so this test draws fewer examples.
@settings(max_examples=25)
@given(data=st.data())
def test_padded_gradient_equals_plain_jax_grad(data):
    problem = data.draw(problems(specs(reduction=data.draw(st.sampled_from(["sum", "mean"])))))
    args = (problem.spec, problem.params, problem.X, problem.Y)
    padded, plain = jax_ref.gradients(*args), jax_ref.plain_gradients(*args)
    truth = ask_witnesses(problem, finite_differences=False)  # the float64 rounding allowance
    for name in plain:
        allowed = truth.witness_allowance[name]
        assert np.all(np.abs(padded[name] - plain[name]) <= allowed), f"{name}: {describe_problem(problem)}"


def test_many_shapes_of_one_structure_compile_at_most_twice():
    rng = np.random.default_rng(5)
    spec = Spec((2, 2, 2), ("tanh", "sigmoid"), bias="vector", layout="rows")
    jax_ref.gradients(spec, {"W1": np.ones((2, 2)), "b1": np.ones(2), "W2": np.ones((2, 2)),
                             "b2": np.ones(2)}, np.ones((3, 2)), np.ones((3, 2)))
    before = jax_ref.compile_count()
    for _ in range(40):
        F, H, C = (int(n) for n in rng.integers(1, 17, size=3))
        N = int(rng.integers(1, 9))
        shaped = spec.replace(sizes=(F, H, C))
        params = {"W1": rng.normal(size=(H, F)), "b1": rng.normal(size=H),
                  "W2": rng.normal(size=(C, H)), "b2": rng.normal(size=C)}
        jax_ref.gradients(shaped, params, rng.normal(size=(N, F)), rng.normal(size=(N, C)))
    assert jax_ref.compile_count() - before <= 1


def test_depths_one_to_four_share_one_compiled_function():
    """Depth is padded too: a padded layer passes a through (and gets a zero gradient)."""
    rng = np.random.default_rng(6)

    def gradients(depth: int) -> dict:
        spec = Spec((3,) * (depth + 1), ("tanh",) * (depth - 1) + ("sigmoid",), bias="vector", layout="rows")
        params = {name: rng.normal(size=shape) for name, shape in param_shapes(spec).items()}
        return jax_ref.gradients(spec, params, rng.normal(size=(4, 3)), rng.uniform(size=(4, 3)))

    gradients(4)
    before = jax_ref.compile_count()
    for depth in (1, 2, 3):
        assert len(gradients(depth)) == 2 * depth
    assert jax_ref.compile_count() == before


def test_every_built_in_loss_shares_one_compiled_function():
    """The loss is a traced switch too: labels and float targets both go in, each loss reads its
    kind, and each loss's gradient is still torch's."""
    rng = np.random.default_rng(7)
    before = None
    for loss in LOSSES:
        output = "sigmoid" if takes_probabilities(loss) else "identity"
        spec = Spec((3, 3, 3), ("tanh", output), loss, bias="vector", layout="rows")
        params = {name: rng.normal(size=shape) for name, shape in param_shapes(spec).items()}
        X = rng.normal(size=(4, 3))
        Y = rng.integers(0, 3, 4) if target_kind(loss) == "labels" else rng.uniform(size=(4, 3))
        grads, truth = jax_ref.gradients(spec, params, X, Y), torch_ref.gradients(spec, params, X, Y)
        for name in truth:
            assert np.allclose(grads[name], truth[name], rtol=1e-12, atol=1e-14), (loss, name)
        before = jax_ref.compile_count() if before is None else before
    assert jax_ref.compile_count() == before


def test_named_arrays_travel_as_one_padded_vector_and_come_back_whole():
    arrays = {"W": np.arange(6.0).reshape(2, 3), "b": np.array([7.0]), "s": np.float64(8.0)}
    vector, named = flattened(arrays)
    assert vector.shape == (8,) and list(vector) == [0, 1, 2, 3, 4, 5, 7, 8]
    back = named(vector * 2)
    assert {key: value.shape for key, value in back.items()} == {"W": (2, 3), "b": (1,), "s": ()}
    assert np.array_equal(back["W"], 2 * arrays["W"]) and back["s"] == 16.0
    assert flattened({})[1](flattened({})[0]) == {}  # a stack without parameters (dropout alone)


@settings(max_examples=10)
@given(data=st.data())
def test_a_started_answer_is_the_answer_bit_for_bit(data):
    """``started_gradients_and_sgd_step`` returns at once and its call waits: the same arrays as
    ``gradients_and_sgd_step``, padded or not (a user's loss takes the unpadded path)."""
    problem = data.draw(problems(specs()))
    args = (problem.spec, problem.params, problem.X, problem.Y, problem.lr)
    waiting = jax_ref.started_gradients_and_sgd_step(*args)
    assert callable(waiting)
    (grads, new), (grads_now, new_now) = waiting(), jax_ref.gradients_and_sgd_step(*args)
    for name in grads_now:
        np.testing.assert_array_equal(grads[name], grads_now[name])
        np.testing.assert_array_equal(new[name], new_now[name])
    assert jax_ref.started_gradients_and_sgd_step(*args[:4], None)()[1] is None


def test_a_started_answer_of_a_network_of_layers_is_the_answer_bit_for_bit():
    """``jax_stack.started_gradients_and_sgd_step``: the same gradients, step and running
    statistics as ``gradients_and_sgd_step`` (a batch norm's included)."""
    from bpcheck.layers.problem import random_problem
    from manual.stack import Stack
    from reference import jax_stack

    p = random_problem(Stack("conv2d:2,k3,p1,nobias;batch_norm;relu;flatten;dense:3", (1, 4, 4)), 3, seed=1)
    args = (p.stack, p.params, p.buffers, p.x, p.y, p.lr, p.masks)
    later, now = jax_stack.started_gradients_and_sgd_step(*args)(), jax_stack.gradients_and_sgd_step(*args)
    for found, expected in zip(later, now, strict=True):
        assert found.keys() == expected.keys() and found
        for name in expected:
            np.testing.assert_array_equal(found[name], expected[name])
