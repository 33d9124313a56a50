"""Every registered activation, loss and rule is complete, documented and matches the frameworks."""

from __future__ import annotations

import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bpcheck.core.tolerances import SAFETY, unit_roundoff
from bpcheck.mlp.strategies import KINK_MARGIN_ABSOLUTE, activation_names, bounded
from manual import spec as vocabulary
from manual.activations import ACTIVATIONS, activation
from manual.losses import LOSSES, one_hot
from manual.rules import RULES
from reference import SENSITIVITY_WITNESS, WITNESSES, jax_ref, torch_ref

FORMULA = re.compile(r"=")  # a docstring formula states an equation
U64 = unit_roundoff(np.float64)
by_activation = pytest.mark.parametrize("name", list(ACTIVATIONS))
by_loss = pytest.mark.parametrize("name", list(LOSSES))
EXTREMES = np.array([-1e4, -1e3, -50.0, -1.0, -1e-3, 1e-3, 1.0, 50.0, 1e3, 1e4])


def test_vocabulary_matches_manual_registries_and_every_witness():
    assert set(ACTIVATIONS) == set(vocabulary.ACTIVATIONS)
    assert set(LOSSES) == set(vocabulary.LOSSES)
    for witness in WITNESSES.values():
        assert witness.activations == set(vocabulary.ACTIVATIONS), witness.name
        assert witness.losses == set(vocabulary.LOSSES), witness.name


def test_the_sensitivity_witness_is_the_one_that_reruns_itself_perturbed():
    rerunning = [name for name, witness in WITNESSES.items() if witness.perturbed_gradients]
    assert rerunning == [SENSITIVITY_WITNESS]


def test_naming_the_witnesses_imports_neither_torch_nor_jax():
    code = "import sys, reference, bpcheck.mlp.compare; print(sorted({'torch', 'jax'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@by_activation
def test_activation_states_its_formula(name):
    act = ACTIVATIONS[name](vocabulary.ACTIVATIONS[name].parameter)
    for part in (act.value, act.derivative or act.jacobian_vjp):
        assert part.__doc__ and FORMULA.search(part.__doc__), f"{name}: {part.__name__} lacks a formula"


@by_loss
def test_loss_states_its_formula(name):
    for part in (LOSSES[name].per_sample, LOSSES[name].gradient):
        assert part.__doc__ and FORMULA.search(part.__doc__), f"{name}: {part.__name__} lacks a formula"


def test_every_rule_says_what_it_is():
    for rule in RULES.values():
        assert rule.summary and isinstance(rule.claims_correct, bool)
    assert RULES["derived"].claims_correct and not RULES["seed-literal"].claims_correct


#: A few shapes only: JAX compiles each operation once per new shape, and these tests run JAX eagerly.
SHAPES = st.sampled_from([(1, 1), (3, 5), (8, 2)])


def cols(low: float = -20.0, high: float = 20.0):
    """Units × samples float64 arrays."""
    return hnp.arrays(np.float64, SHAPES, elements=bounded(low, high, "float64"))


@by_activation
@given(data=st.data(), z=cols(), upstream=cols(low=-1.0, high=1.0))
def test_activation_value_and_vjp_match_torch_autograd_and_jax_grad(name, data, z, upstream):
    """z is units × samples; the vjp is compared for a random upstream gradient."""
    name = data.draw(activation_names(name))
    upstream = np.resize(upstream, z.shape)
    record = vocabulary.ACTIVATIONS[vocabulary.parse_activation(name)[0]]
    for kink in record.kinks:  # a kink has its own test
        z = np.where(np.abs(z - kink) < KINK_MARGIN_ABSOLUTE, kink + 1.0, z)
    manual = activation(name)
    a = manual.value(z)
    t = torch.tensor(z.T, requires_grad=True)
    torch_value = torch_ref.activation(name)(t)
    torch_value.backward(torch.tensor(upstream.T))
    jax_value, jax_vjp = jax.vjp(lambda v: jax_ref.activation(name)(v, jnp.ones(z.shape, bool)), z)
    condition = (record.output_form_condition or (lambda v: 1.0))(z.T)
    value_tol = SAFETY * U64 * 4 * np.maximum(np.abs(a), np.finfo(float).tiny)
    for other in (torch_value.detach().numpy().T, np.asarray(jax_value)):
        assert np.all(np.abs(a - other) <= value_tol), name
    ours = manual.vjp(z, a, upstream)
    # frameworks take σ′ from the output, which loses digits near saturation (bpcheck.core.tolerances)
    scale = np.abs(upstream) * 2 * np.maximum(1, np.abs(a)) + np.abs(ours)
    # plus an underflow floor: XLA flushes subnormal results to zero
    allowed = SAFETY * U64 * (4 + np.max(condition)) * np.max(scale) + SAFETY * np.finfo(float).tiny
    for other in (t.grad.numpy().T, np.asarray(jax_vjp(upstream)[0])):
        assert np.all(np.abs(ours - other) <= allowed), name


def loss_inputs(name: str, rng: np.random.Generator, classes: int, n: int):
    """Predictions (C, N) in the loss's domain and matching targets."""
    kind, probabilities = vocabulary.target_kind(name), vocabulary.takes_probabilities(name)
    p = rng.uniform(0.05, 0.95, (classes, n)) if probabilities else rng.normal(0, 3, (classes, n))
    if kind == "labels":
        return p, rng.integers(0, classes, n)
    return p, (rng.uniform(0, 1, (classes, n)) if kind == "probabilities" else rng.normal(size=(classes, n)))


@by_loss
@given(seed=st.integers(0, 2**32 - 1), shape=SHAPES)
def test_loss_value_and_gradient_match_torch_autograd_and_jax_grad(name, seed, shape):
    classes, n = shape
    p, y = loss_inputs(name, np.random.default_rng(seed), classes, n)
    ours_value, ours_grad = LOSSES[name].per_sample(p, y), LOSSES[name].gradient(p, y)
    t = torch.tensor(p.T, requires_grad=True)
    y_torch = torch.tensor(y) if y.ndim == 1 else torch.tensor(y.T)
    torch_value = torch_ref.LOSSES[name](t, y_torch)
    torch_value.sum().backward()
    mask = jnp.ones(p.shape, bool)
    jax_value, jax_grad = jax.value_and_grad(lambda q: jax_ref.LOSSES[name](q, y, mask).sum())(p)
    tol = SAFETY * U64 * (4 + classes)
    for value, grad in ((torch_value.detach().numpy(), t.grad.numpy().T),
                        (np.asarray(jax_ref.LOSSES[name](p, y, mask)), np.asarray(jax_grad))):
        scale = np.abs(ours_value) + 1
        assert np.all(np.abs(ours_value - value) <= tol * scale), (name, "value")
        assert np.all(np.abs(ours_grad - grad) <= tol * (np.abs(ours_grad) + np.max(np.abs(y)) + 1)), name
    assert float(jax_value) == pytest.approx(float(np.sum(ours_value)), rel=tol)


@pytest.mark.parametrize("name", ["relu", "leaky_relu:0.2"])
def test_kink_convention_at_zero_follows_torch_and_the_frameworks_differ_on_leaky_relu(name):
    """relu′(0) = 0 everywhere; leaky_relu′(0) is the slope in torch (and here) but 1 in JAX."""
    zero = np.zeros(1)
    t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    torch_ref.activation(name)(t).sum().backward()
    jax_value = float(jax.grad(lambda z: jax_ref.activation(name)(z, None))(0.0))
    ours = float(activation(name).vjp(zero, activation(name).value(zero), np.ones(1))[0])
    assert ours == float(t.grad[0])
    assert jax_value == (0.0 if name == "relu" else 1.0)


@by_activation
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_is_stable_at_huge_inputs(name, dtype):
    """No overflow warnings (pytest turns them into errors), finite values and gradients."""
    z = np.stack([EXTREMES, -EXTREMES]).astype(dtype)  # 2 units × 10 samples
    act = activation(name)
    a = act.value(z)
    g = act.vjp(z, a, np.ones_like(z))
    assert a.dtype == dtype and g.dtype == dtype
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(g))


@by_loss
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_is_stable_at_huge_logits(name, dtype):
    z = np.stack([EXTREMES, -EXTREMES]).astype(dtype)
    # probabilities hit 0 and 1 exactly
    p = activation("sigmoid").value(z) if vocabulary.takes_probabilities(name) else z
    kind = vocabulary.target_kind(name)
    y = np.zeros(10, dtype=int) if kind == "labels" else one_hot(np.arange(10) % 2, 2, dtype)
    value, grad = LOSSES[name].per_sample(p, y), LOSSES[name].gradient(p, y)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    assert value.dtype == dtype and grad.dtype == dtype


@pytest.mark.parametrize("bias", vocabulary.BIAS_STYLES)
def test_rules_and_witnesses_stay_finite_when_every_layer_saturates(bias):
    """|z| ≈ 1e4 everywhere: no overflow warnings (errors under pytest), finite results."""
    spec = vocabulary.Spec((3, 4, 2), ("sigmoid", "tanh"), bias=bias)
    rng = np.random.default_rng(1)
    params = {name: 1e4 * np.sign(rng.normal(size=shape))
              for name, shape in vocabulary.param_shapes(spec).items()}
    X, Y = np.ones((3, 5)), rng.uniform(size=(2, 5))
    results = [rule.step(spec, params, X, Y, 0.1) for rule in RULES.values()
               if rule.unsupported_reason(spec) is None]
    results += [witness.gradients(spec, params, X, Y) for witness in WITNESSES.values()]
    for result in results:
        assert all(np.all(np.isfinite(value)) for value in result.values())
