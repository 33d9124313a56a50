"""Every registered activation, loss and rule is complete, documented and matches the frameworks."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis.extra import numpy as hnp

from manual import spec as vocabulary
from manual.activations import ACTIVATIONS
from manual.losses import LOSSES
from manual.rules import RULES
from reference import WITNESSES, jax_ref, torch_ref
from study.tolerances import OUTPUT_FORM_CONDITION, SAFETY, unit_roundoff
from tests.strategies import bounded

FORMULA = re.compile(r"=")  # a docstring formula states an equation
activations = pytest.mark.parametrize("name", list(ACTIVATIONS))
EXTREMES = np.array([-1e4, -1e3, -50.0, -1.0, -1e-3, 1e-3, 1.0, 50.0, 1e3, 1e4])


def test_vocabulary_matches_manual_registries_and_every_witness():
    assert set(ACTIVATIONS) == set(vocabulary.ACTIVATIONS)
    assert set(LOSSES) == set(vocabulary.LOSSES)
    for witness in WITNESSES.values():
        assert witness.activations == set(vocabulary.ACTIVATIONS), witness.name
        assert witness.losses == set(vocabulary.LOSSES), witness.name


@activations
def test_activation_value_and_derivative_state_their_formula(name):
    activation = ACTIVATIONS[name]
    for part in (activation.value, activation.derivative):
        assert part.__doc__ and FORMULA.search(part.__doc__), f"{name}: {part.__name__} lacks a formula"


@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_value_and_gradient_state_their_formula(name):
    for part in (LOSSES[name].per_sample, LOSSES[name].gradient):
        assert part.__doc__ and FORMULA.search(part.__doc__), f"{name}: {part.__name__} lacks a formula"


def test_every_rule_says_what_it_is():
    for rule in RULES.values():
        assert rule.summary and isinstance(rule.claims_correct, bool)
    assert RULES["derived"].claims_correct and not RULES["seed-literal"].claims_correct


@activations
@given(z=hnp.arrays(np.float64, hnp.array_shapes(max_dims=2, max_side=8),
                    elements=bounded(-20.0, 20.0, "float64")))
def test_activation_and_derivative_match_torch_autograd_and_jax_grad(name, z):
    z = z[np.abs(z) > 1e-6] if name == "relu" else z  # the kink has its own test
    manual = ACTIVATIONS[name]
    a = manual.value(z)
    t = torch.tensor(z, requires_grad=True)
    torch_ref.ACTIVATIONS[name](t).sum().backward()
    jax_derivative = jax.vmap(jax.grad(jax_ref.ACTIVATIONS[name]))(jnp.asarray(z.ravel()))
    np.testing.assert_allclose(a, torch_ref.ACTIVATIONS[name](torch.tensor(z)).numpy(),
                               rtol=SAFETY * unit_roundoff(np.float64) * 4, atol=1e-300)
    # frameworks take σ′ from the output, which loses digits near saturation (study.tolerances)
    condition = OUTPUT_FORM_CONDITION.get(name, lambda z: np.ones_like(z))(z)
    allowed = SAFETY * unit_roundoff(np.float64) * (4 + condition)
    derivative = manual.derivative(z, a)
    for other in (t.grad.numpy(), np.asarray(jax_derivative).reshape(z.shape)):
        assert np.all(np.abs(derivative - other) <= allowed * np.maximum(np.abs(derivative), 1e-300)), name


@activations
def test_activation_kink_convention_matches_torch_and_jax(name):
    zero = np.zeros(1)
    t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    torch_ref.ACTIVATIONS[name](t).sum().backward()
    jax_value = float(jax.grad(jax_ref.ACTIVATIONS[name])(0.0))
    ours = float(ACTIVATIONS[name].derivative(zero, ACTIVATIONS[name].value(zero))[0])
    assert ours == float(t.grad[0]) == jax_value


@activations
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_is_stable_at_huge_inputs(name, dtype):
    """No overflow warnings (pytest turns them into errors), finite values, right limits."""
    z = EXTREMES.astype(dtype)
    a = ACTIVATIONS[name].value(z)
    d = ACTIVATIONS[name].derivative(z, a)
    assert a.dtype == dtype and d.dtype == dtype
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(d)) and np.all(d >= 0)
    assert d[0] == 0 and d[-1] == (1 if name == "relu" else 0)


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
