"""A user activation element by element: a wrong forward is named as a wrong forward, a wrong
derivative by the element where it fails, and forwards that disagree as the witnesses
disagreeing among themselves."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from bpcheck import UserActivation, check
from bpcheck.core.verdicts import AGREES, NOT_VERIFIED, RAISED, WRONG
from bpcheck.mlp.strategies import KINK_MARGIN_ABSOLUTE
from bpcheck.user.elementwise import Mismatch, activation_mismatches, distinct, grid, undeclared_kinks
from bpcheck.user.guards import guarded


def softsign(z):
    return z / (1 + np.abs(z))


def softsign_derivative(z, a):
    return 1 / (1 + np.abs(z)) ** 2


SOFTSIGN = UserActivation("softsign", softsign, softsign_derivative,
                          torch=lambda z: z / (1 + z.abs()), jax=lambda z: z / (1 + jnp.abs(z)))


def test_a_correct_activation_has_no_mismatch_anywhere_on_the_grid():
    assert activation_mismatches(guarded(SOFTSIGN)) == []
    assert check(SOFTSIGN, 10).verdict == AGREES


def test_a_wrong_forward_is_named_as_a_wrong_forward():
    wrong = dataclasses.replace(SOFTSIGN, name="softsign_off", value=lambda z: z / (1.001 + np.abs(z)))
    report = check(wrong, 10)
    assert report.verdict == WRONG and "WRONG forward — at z = " in report.message
    assert report.examples == 0  # no network: it would blame the derivative


def test_forwards_that_disagree_are_the_witnesses_disagreeing():
    split = dataclasses.replace(SOFTSIGN, name="softsign_split", jax=lambda z: z / (1 + z * z))
    report = check(split, 10)
    assert report.verdict in (WRONG, NOT_VERIFIED)
    assert any(m.witness == "jax vs torch" for m in report.elements)


def test_a_derivative_wrong_only_far_out_is_caught_on_the_grid():
    far = dataclasses.replace(SOFTSIGN, name="softsign_far", derivative=lambda z, a: np.where(
        np.abs(z) > 8, 0.0, softsign_derivative(z, a)))
    report = check(far, 10)
    assert report.verdict == WRONG, report.message
    [first, *_] = [m for m in report.elements if m.quantity == "derivative"]
    assert abs(first.z) > 8 and first.yours == 0.0
    assert np.isclose(first.theirs, 1 / (1 + abs(first.z)) ** 2, rtol=1e-12)
    assert f"at z = {first.z:.6g} your σ′ = 0" in report.message
    assert first.run is not None and 8 < abs(first.run[0]) <= 10 and 8 < abs(first.run[1]) <= 10


def test_a_derivative_wrong_on_a_whole_interval_says_so_not_only_its_worst_point():
    """A leaky ReLU whose derivative has the slope 0.01 where its value has 0.1: the report named
    z = −10 alone, as if one point were off; it is every z < 0."""
    leaky = UserActivation("leaky_slip", lambda z: np.where(z > 0, z, 0.1 * z),
                           lambda z, a: np.where(z > 0, 1.0, 0.01),
                           torch=lambda z: torch.where(z > 0, z, 0.1 * z),
                           jax=lambda z: jnp.where(z > 0, z, 0.1 * z), kinks=(0.0,))
    elements = activation_mismatches(guarded(leaky))
    [torch_row] = [m for m in elements if m.quantity == "derivative" and m.witness == "torch"]
    low, high = torch_row.run
    assert low == grid((0.0,)).min() and -2 * KINK_MARGIN_ABSOLUTE <= high < 0
    assert f"(and at every z of the grid from {low:.4g} to {high:.4g})" in str(torch_row)
    one_point = Mismatch("derivative", "torch", 3.0, 1.0, 2.0, 1e-12)
    assert "every z" not in str(one_point)


def test_the_grid_keeps_away_from_declared_kinks_and_visits_both_sides():
    z = grid((0.0, 1.5))
    assert np.min(np.abs(z)) >= KINK_MARGIN_ABSOLUTE and np.min(np.abs(z - 1.5)) >= KINK_MARGIN_ABSOLUTE
    beside = 2 * KINK_MARGIN_ABSOLUTE
    assert np.any(np.isclose(z, beside)) and np.any(np.isclose(z, 1.5 - beside))


def test_a_forward_that_raises_is_named():
    def broken(z):
        raise ValueError("not for arrays")

    report = check(dataclasses.replace(SOFTSIGN, name="softsign_raises", torch=broken), 10)
    assert report.verdict == RAISED and "your torch raised ValueError: not for arrays" in report.message


@pytest.mark.parametrize("scale", [1e-12, 1e12])
def test_the_allowance_scales_with_the_function(scale):
    """A correct function of any size agrees; one off by 1e−9 relative does not."""
    big = UserActivation("scaled", lambda z: scale * np.tanh(z), lambda z, a: scale * (1 - np.tanh(z) ** 2),
                         torch=lambda z: scale * torch.tanh(z), jax=lambda z: scale * jnp.tanh(z))
    assert activation_mismatches(guarded(big)) == []
    off = dataclasses.replace(big, value=lambda z: scale * np.tanh(z) * (1 + 1e-9))
    assert [m.witness for m in activation_mismatches(guarded(off)) if m.quantity == "value"]


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "leaky_relu", "softplus", "identity"])
def test_every_built_in_activation_passes_its_own_grid(name):
    """The allowance is not too tight: the family's own NumPy rules against its witnesses'
    forwards, through the same check a user activation gets."""
    from manual.activations import activation
    from manual.vocabulary import ACTIVATIONS
    from reference import jax_ref, torch_ref

    manual = activation(name)
    record = ACTIVATIONS[name]
    jax_forward = jax_ref.ACTIVATIONS[name](record.parameter)
    rule = UserActivation(f"my_{name}", manual.value, lambda z, a: manual.vjp(z, a, np.ones_like(z)),
                          torch=torch_ref.activation(name), jax=lambda z: jax_forward(z, None),
                          kinks=record.kinks)
    assert activation_mismatches(guarded(rule)) == []


def _soft_relu(at_zero: float, declared: float | None) -> UserActivation:
    return UserActivation(f"relu_{at_zero:g}", lambda z: np.maximum(z, 0.0),
                          lambda z, a: np.where(z > 0, 1.0, np.where(z == 0, at_zero, 0.0)),
                          torch=torch.relu, jax=lambda z: jnp.maximum(z, 0.0), kinks=(0.0,),
                          at_kinks=None if declared is None else (declared,))


def test_the_derivative_at_a_kink_is_checked_against_its_declared_convention():
    report = check(_soft_relu(1.0, 0.0), 10)
    assert report.verdict == WRONG and "WRONG at a kink — at the kink z = 0 your σ′ = 1 (you declared 0)" \
        in report.message
    assert "torch's convention 0, jax's" in report.message


def test_a_declared_convention_that_differs_from_the_frameworks_is_allowed_and_reported():
    report = check(_soft_relu(1.0, 1.0), 10)
    assert report.verdict == AGREES, report.message
    [kink] = report.kinks
    assert (kink.z, kink.yours, kink.declared, kink.torch) == (0.0, 1.0, 1.0, 0.0)


def test_at_kinks_needs_one_value_per_kink():
    with pytest.raises(ValueError, match="one finite σ′ per kink"):
        _soft_relu(0.0, None).__class__("r", np.abs, np.sign, torch=torch.abs, jax=jnp.abs,
                                        kinks=(0.0,), at_kinks=(0.0, 1.0))


def _softplus(z):
    return np.logaddexp(0.0, z)


MISH = UserActivation(
    "mish", lambda z: z * np.tanh(_softplus(z)),
    lambda z, a: np.tanh(_softplus(z)) + z * (1 - np.tanh(_softplus(z)) ** 2) / (1 + np.exp(-z)),
    torch=lambda z: z * torch.tanh(torch.nn.functional.softplus(z)),
    jax=lambda z: z * jnp.tanh(jnp.logaddexp(0.0, z)))
Z_TANH = UserActivation("z_tanh", lambda z: z * np.tanh(z),
                        lambda z, a: np.tanh(z) + z * (1 - np.tanh(z) ** 2),
                        torch=lambda z: z * torch.tanh(z), jax=lambda z: z * jnp.tanh(z))


@pytest.mark.parametrize("rule", [MISH, Z_TANH], ids=["mish", "z_tanh"])
def test_composite_activations_that_are_right_pass_the_grid(rule):
    """Forwards of several operations, saturating at |z| ≈ 10, where torch and jax differ by
    tens of u: a new user's trial found these refused when the allowance counted R roundings."""
    assert activation_mismatches(guarded(rule)) == []


def test_a_composite_derivative_wrong_only_far_out_is_wrong():
    tail = dataclasses.replace(MISH, name="mish_tail", derivative=lambda z, a: np.where(
        np.abs(z) > 6, 0.0, MISH.derivative(z, a)))
    report = check(tail, 10)
    assert report.verdict == WRONG and "your σ′ = 0, torch 1.0000" in report.message


def test_an_undeclared_kink_is_pointed_out():
    leaky = UserActivation("leaky_undeclared", lambda z: np.where(z > 0, z, 0.1 * z),
                           lambda z, a: np.where(z > 0, 1.0, 0.1),
                           torch=lambda z: torch.nn.functional.leaky_relu(z, 0.1),
                           jax=lambda z: jnp.where(z > 0, z, 0.1 * z))
    [(low, high)] = undeclared_kinks(guarded(leaky))
    assert low <= 0.0 < high and high - low < 0.03
    assert undeclared_kinks(guarded(dataclasses.replace(leaky, kinks=(0.0,)))) == []
    assert undeclared_kinks(guarded(MISH)) == [] and undeclared_kinks(guarded(SOFTSIGN)) == []
    report = check(leaky, 8)  # the hint is the grid's; a few networks show it reaches the report
    assert report.hints == ["a kink between z = 0 and z = 0.025"]
    assert report.passed or "where no kink is declared" in report.message


def test_the_report_says_where_the_networks_and_the_grid_reached():
    report = check(SOFTSIGN, 10)
    assert report.reached.startswith("the networks met ") and "the grid covers |z| ≤ 10" in report.reached
    assert report.reached in str(report)


def test_a_mismatch_shows_enough_digits_to_tell_its_numbers_apart():
    """σ′ = 1 + 10ε against torch's 1 read "1, torch 1" at 10 digits."""
    slip = Mismatch("derivative", "torch", 7.125, 1.0000000000000098, 1.0, 3.5e-15)
    assert str(slip) == "at z = 7.125 your σ′ = 1.00000000000001, torch 1"
    assert distinct(0.1 + 0.2, 0.3) == ("0.30000000000000004", "0.29999999999999999")
    assert distinct(0.5, 0.5) == ("0.5", "0.5") and distinct(0.5, 0.25) == ("0.5", "0.25")
