"""Networks of layers: each layer alone, and random networks, against torch, jax and finite
differences (of torch's forward and of the rule's own), in float64 and float32."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpcheck.core.projected import ALONG
from bpcheck.layers.compare import DERIVED, compare_stack
from bpcheck.layers.problem import StackProblem, random_problem
from bpcheck.layers.strategies import ALONE, NETWORK_SCALES, networks, single_layer_problems, stack_problems
from manual import stack_network
from manual.spec import ACTIVATIONS, LOSSES, parse_activation
from manual.stack import Stack, param_shapes
from manual.stack_text import describe_layers, parse_layers
from reference import jax_stack, torch_stack

#: Examples per layer kind and dtype, and per network dtype: the ci profile's 100 would triple
#: this file's time; every option of every kind is reachable (tests/test_stack_strategies.py),
#: and 100 per kind and dtype ran clean before landing (README, Networks of layers).
LAYER_EXAMPLES, NETWORK_EXAMPLES = 25, 15


def describe(problem: StackProblem) -> str:
    return (f"{problem.stack.describe()} loss={problem.stack.loss}/{problem.stack.reduction} "
            f"dtype={problem.stack.dtype} N={problem.n_samples}")


def assert_agrees_with_every_witness(problem: StackProblem) -> None:
    """The derived rule agrees (every gradient row settled, nothing differs), and the witnesses
    agree among themselves; inconclusive draws are not this test's examples."""
    from hypothesis import assume

    (report,), witness_rows, _ = compare_stack(problem)
    bad = [f"{row.quantity} of {row.parameter} vs {row.witness}: rel err {row.error.rel:.3e} "
           f"(tolerance {row.tolerance:.3e}) at {row.error.where}"
           for row in [*report.rows, *witness_rows] if row.differs]
    assert not bad, f"{describe(problem)}\n" + "\n".join(bad)
    assume(report.verdict == "agrees")
    witnesses = {row.witness for row in report.rows if row.quantity in ("gradient", ALONG)}
    assert witnesses == {"torch", "jax", "numeric"}, witnesses
    assert {row.witness for row in report.rows if row.quantity == "consistency"} == {"own forward"}
    assert {row.parameter for row in report.rows} >= {*problem.params, *(() if problem.stack.tokens else "x")}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", ALONE)
@settings(max_examples=LAYER_EXAMPLES)
@given(data=st.data())
def test_each_layer_alone_agrees_with_torch_jax_and_finite_differences(kind, dtype, data):
    assert_agrees_with_every_witness(data.draw(single_layer_problems(kind, dtype)))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@settings(max_examples=NETWORK_EXAMPLES)
@given(data=st.data())
def test_random_networks_agree_with_torch_jax_and_finite_differences(dtype, data):
    stack = data.draw(networks(dtype))
    assert_agrees_with_every_witness(data.draw(stack_problems(stack, scales=NETWORK_SCALES)))


def test_the_issue_example_network_agrees_in_both_dtypes():
    for dtype in ("float64", "float32"):
        stack = Stack("conv2d:8,k3,s1,p1;relu;max_pool2d:k2;flatten;dense:10", (1, 8, 8), dtype=dtype)
        (report,), witness_rows, _ = compare_stack(random_problem(stack, 4, seed=0))
        assert report.verdict == "agrees", [r for r in report.rows if not r.agrees]
        assert not any(row.differs for row in witness_rows)


def _pool_gradients(x: np.ndarray, text: str) -> dict[str, np.ndarray]:
    """∂L/∂x of ``text;flatten`` under ½Σ out² (dout = out) from the rule, torch and jax."""
    stack = Stack(f"{text};flatten", x.shape[1:], loss="half-sse", reduction="sum")
    n = x.shape[0]
    y = np.zeros((n, stack.classes))
    return {"rule": stack_network.gradients(stack, {}, x, y)["x"],
            "torch": torch_stack.gradients(stack, {}, x, y)["x"],
            "jax": jax_stack.gradients(stack, {}, x, y)["x"]}


@pytest.mark.parametrize("text", ["max_pool2d:k2", "max_pool2d:k3,s2", "max_pool2d:k2,s1"])
def test_max_pool_ties_send_the_gradient_to_the_first_maximum_like_both_frameworks(text):
    """Where a window holds its maximum twice or more, the function has no derivative; the
    convention (manual.layers.pooling) is the first in row-major order, as torch and XLA do."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, size=(2, 2, 7, 7)).astype(np.float64)  # many ties among 0, 1, 2
    x[0, 0] = 1.0  # every window of one channel tied throughout
    grads = _pool_gradients(x, text)
    np.testing.assert_array_equal(grads["rule"], grads["torch"])
    np.testing.assert_array_equal(grads["rule"], grads["jax"])
    first = np.zeros((7, 7))
    step = 2 if text.endswith("k2") else int(text[-1])
    size = int(text.split(":k")[1][0])
    for i in range(0, 7 - size + 1, step):
        for j in range(0, 7 - size + 1, step):
            first[i, j] += 1.0  # out = 1 everywhere: dout = 1 to each window's top-left corner
    np.testing.assert_array_equal(grads["rule"][0, 0], first)


def test_batch_norm_over_one_value_per_channel_is_an_error_naming_the_layer():
    stack = Stack("dense:3;batch_norm;dense:2", (4,))
    problem = random_problem(stack, 2, seed=0)
    with pytest.raises(ValueError, match=r"x has 1 sample: bn1 \(batch_norm\) would normalise 1 value"):
        stack_network.gradients(stack, problem.params, problem.x[:1], problem.y[:1])


def test_spatial_batch_norm_on_a_batch_of_one_agrees():
    stack = Stack("conv2d:2,k2,nobias;batch_norm;tanh;flatten;dense:3", (1, 4, 4))
    (report,), witness_rows, _ = compare_stack(random_problem(stack, 1, seed=3))
    assert report.verdict == "agrees" and not any(row.differs for row in witness_rows)
    assert any(row.quantity == "running" and row.agrees for row in report.rows)


def test_a_saturated_network_is_inconclusive_where_the_truth_underflowed_and_names_the_layer():
    """Inputs of 100 saturate tanh: torch's 1 − tanh² is exactly 0 where the rule's derivative
    is 4e^{−2|z|}; those entries cannot be judged, and the reason says which layer."""
    stack = Stack("conv2d:1,k1,s2,p2;tanh;res(conv2d:1,k3,p1;softplus);layer_norm;flatten;dense:3", (2, 5, 4))
    (report,), _, truth = compare_stack(random_problem(stack, 1, seed=1, scale=100.0))
    assert report.verdict == "inconclusive"
    assert truth.saturation.startswith("tanh1 (tanh) is saturated: its input reaches")
    assert not any(row.differs for row in report.rows)


def test_a_mistake_after_a_saturated_layer_is_still_found():
    """The saturated tanh widens the allowances of the layers before it only: batch norm's
    mistake, after it, still differs, on dense1's parameters."""
    from bpcheck.layers.mutants import LAYER_MUTANTS

    stack = Stack("conv2d:2,k3,p1;tanh;flatten;dense:4;batch_norm;relu;dense:3", (1, 4, 4))
    problem = random_problem(stack, 4, seed=0, scale=100.0)
    (derived, mutant), _, truth = compare_stack(problem, [DERIVED, LAYER_MUTANTS["batch_norm_first_term"]])
    assert truth.saturation.startswith("tanh1 (tanh) is saturated")
    assert derived.verdict == "inconclusive" and not any(row.differs for row in derived.rows)
    assert mutant.verdict == "DIFFERS"
    assert {row.parameter for row in mutant.rows if row.differs} >= {"dense1.W", "dense1.b"}


def test_a_bias_before_batch_norm_is_inconclusive_and_says_why():
    stack = Stack("conv2d:2,k2;batch_norm;relu;flatten;dense:3", (1, 4, 4))
    (report,), _, _ = compare_stack(random_problem(stack, 3, seed=0))
    assert report.verdict == "inconclusive"
    assert "conv1.b is zero up to rounding" in report.saturation and "nobias" in report.saturation
    assert {row.parameter for row in report.rows if row.verdict == "inconclusive"} == {"conv1.b"}


@pytest.mark.parametrize("text", [
    "conv2d:8,k3,s1,p1;relu;max_pool2d:k2;flatten;dense:10",
    "conv2d:2,k2x3,s2,p1,d2,nobias;batch_norm:m0.5,e0.001;res(conv2d:2,k3,p1;tanh);dropout:p0.25;"
    "avg_pool2d:k2,s1;layer_norm;flatten;dense:3,nobias",
])
def test_layers_read_back_from_their_description(text):
    layers = parse_layers(text)
    assert parse_layers(describe_layers(layers)) == layers


@pytest.mark.parametrize(("text", "shape", "message"), [
    ("conv2d:4,k5;flatten;dense:2", (1, 3, 3), "conv1 .* does not fit its 3x3 input"),
    ("dense:3", (1, 4, 4), "needs samples of shape .F,. or .T, D.: add flatten before it"),
    ("conv2d;flatten;dense:2", (1, 4, 4), "conv2d needs its width first"),
    ("conv2d:2,q3;flatten;dense:2", (1, 4, 4), "unknown option 'q3'"),
    ("pool;flatten", (1, 4, 4), "unknown"),
    ("res(dense:3);dense:2", (4,), "must keep the shape"),
    ("conv2d:2", (1, 4, 4), "the loss needs .C,., or .T, C. at every step: end with flatten and dense"),
    ("softmax;dense:2", (4,), "mixes units"),
    ("dropout:p1;dense:2", (4,), r"drop probability must be in \[0, 1\)"),
    ("dense:2;;dense:2", (4,), "an empty layer"),
])
def test_a_network_that_cannot_be_built_is_an_error_naming_the_layer(text, shape, message):
    with pytest.raises(ValueError, match=message):
        Stack(text, shape)


def test_bad_inputs_are_errors_naming_the_argument_and_arrays_are_not_changed():
    stack = Stack("conv2d:2,k2;dropout:p0.5;flatten;dense:3", (1, 4, 4))
    problem = random_problem(stack, 2, seed=0)
    params, x, y, masks = problem.params, problem.x, problem.y, problem.masks
    copies = {name: value.copy() for name, value in {**params, "x": x, **masks}.items()}
    stack_network.gradients(stack, params, x, y, masks)
    for name, value in {**params, "x": x, **masks}.items():
        np.testing.assert_array_equal(value, copies[name], err_msg=name)
    cases = [
        ((params, x[:, :, :3], y, masks), r"x has shape \(2, 1, 3, 4\); expected \(N, 1, 4, 4\)"),
        ((params, x[:0], y[:0], masks), "the batch is empty"),
        (({**params, "conv1.W": params["conv1.W"][:1]}, x, y, masks), r"params\['conv1.W'\] has shape"),
        ((params, x, y, {}), r"masks has keys \[\]; expected \['drop1'\]"),
        ((params, x, y, {"drop1": masks["drop1"] * 2 + 1}), "must hold only 0 and 1"),
        ((params, np.where(x > 0, np.nan, x), y, masks), "x contains NaN or Inf"),
        ((params, x, y[:, None], masks), "y has shape"),
        ((params, x.astype(np.float32), y, masks), "x has dtype float32; the spec asks for float64"),
    ]
    for args, message in cases:
        with pytest.raises((ValueError, TypeError), match=message):
            stack_network.gradients(stack, *args)


def test_parameters_are_named_by_layer_in_torch_layouts():
    stack = Stack("conv2d:4,k3x2,p1;batch_norm;relu;flatten;layer_norm;dense:3,nobias", (2, 5, 5))
    assert param_shapes(stack) == {"conv1.W": (4, 2, 3, 2), "conv1.b": (4,), "bn1.gamma": (4,),
                                   "bn1.beta": (4,), "ln1.gamma": (120,), "ln1.beta": (120,),
                                   "dense1.W": (3, 120)}


def test_the_derived_rule_is_registered_as_correct():
    assert DERIVED.claims_correct and DERIVED.pairs == stack_network.PAIRS


@settings(max_examples=30)
@given(data=st.data())
def test_an_mlp_spec_is_the_short_form_of_its_dense_layers(data):
    """The MLP family's derived rule and the layers' give the same gradients on the same numbers."""
    from bpcheck.mlp.strategies import problems as mlp_problems
    from bpcheck.mlp.strategies import specs
    from manual import network
    from manual.stack import from_spec, from_spec_arrays

    loss = data.draw(st.sampled_from([n for n, r in LOSSES.items() if not r.probability_outputs]))
    spec = data.draw(specs(max_hidden_layers=3, l2=0.0, loss=loss).filter(
        lambda s: not ACTIVATIONS[parse_activation(s.activations[-1])[0]].output_only))
    problem = data.draw(mlp_problems(st.just(spec)))
    stack = from_spec(spec)
    params, x, y = from_spec_arrays(spec, problem.params, problem.X, problem.Y)
    mlp = network.gradients(spec, problem.params, problem.X, problem.Y)
    layers = stack_network.gradients(stack, params, x, y)
    as_layers, _, _ = from_spec_arrays(spec, mlp, problem.X, problem.Y)
    # the scale is the largest gradient of the network, not the entry's own: an entry that is a
    # cancellation (p − y with p ≈ y upstream) is rounding of larger terms, ±2e-19 either way
    scale = max(float(np.max(np.abs(value), initial=0.0)) for value in as_layers.values())
    for name, value in as_layers.items():
        np.testing.assert_allclose(layers[name], value, rtol=0, atol=64 * np.finfo(spec.dtype).eps * scale,
                                   err_msg=f"{name} of {stack.describe()}")
