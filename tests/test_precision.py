"""Correct formulas that round differently are not wrong (``bpcheck.user.precision``): textbook
activations with cancellation in their intermediates agree inside networks and earn a precision
note on the grid; GELU verifies in its tanh and erf forms; a derivative off by 1e−4 is still
WRONG, and placed where it is off; finite differences do not decide alone where their steps
round away."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.special import erf

from bpcheck import UserActivation, check
from bpcheck.core.verdicts import AGREES, DIFFERS, NOT_VERIFIED, WRONG
from bpcheck.mlp.compare import ask_witnesses, compare_rule
from bpcheck.mlp.problem import Problem
from bpcheck.user.elementwise import grid_findings
from bpcheck.user.guards import guarded
from bpcheck.user.precision import Scale, anchor, value_allowance
from bpcheck.user.registry import REGISTRY
from manual.rules import RULES
from manual.spec import Spec


def tanh_by_exp(z):
    return 2 / (1 + np.exp(-2 * z)) - 1


TANH_BY_EXP = UserActivation("tanh_by_exp", tanh_by_exp, lambda z, a: 1 - tanh_by_exp(z) ** 2,
                             torch=torch.tanh, jax=jnp.tanh)
ELU_BY_EXP = UserActivation("elu_by_exp", lambda z: np.where(z > 0, z, np.exp(z) - 1),
                            lambda z, a: np.where(z > 0, 1.0, np.exp(z)), torch=F.elu, jax=jax.nn.elu,
                            kinks=(0.0,))
SOFTPLUS_BY_LOG = UserActivation("softplus_by_log", lambda z: np.log(np.exp(z) + 1),
                                 lambda z, a: 1 / (1 + np.exp(-z)), torch=F.softplus, jax=jax.nn.softplus)
C = np.sqrt(2 / np.pi)


def gelu_tanh(z):
    return 0.5 * z * (1 + np.tanh(C * (z + 0.044715 * z**3)))


def gelu_tanh_derivative(z, a):
    t = np.tanh(C * (z + 0.044715 * z**3))
    return 0.5 * (1 + t) + 0.5 * z * (1 - t**2) * C * (1 + 3 * 0.044715 * z**2)


GELU_TANH = UserActivation("gelu_tanh", gelu_tanh, gelu_tanh_derivative,
                           torch=lambda z: F.gelu(z, approximate="tanh"),
                           jax=lambda z: jax.nn.gelu(z, approximate=True))
GELU_ERF = UserActivation(
    "gelu_erf", lambda z: 0.5 * z * (1 + erf(z / np.sqrt(2))),
    lambda z, a: 0.5 * (1 + erf(z / np.sqrt(2))) + z * np.exp(-z**2 / 2) / np.sqrt(2 * np.pi),
    torch=F.gelu, jax=lambda z: jax.nn.gelu(z, approximate=False))


def _one_unit(rule: UserActivation, w1: float) -> str:
    """The derived rule's verdict on 1 → 1 → 1 (rule, identity), z₁ = w1: where a formula
    with cancellation loses relative precision when z₁ is small."""
    with REGISTRY.scoped(rule):
        spec = Spec((1, 1, 1), (rule.name, "identity"), bias="vector")
        params = {"W1": np.array([[w1]]), "b1": np.array([0.0]), "W2": np.array([[1.0]]),
                  "b2": np.array([0.0])}
        problem = Problem(spec, params, np.array([[1.0]]), np.array([[0.0]]), 0.1)
        return compare_rule(RULES["derived"], problem, ask_witnesses(problem)).verdict


@pytest.mark.parametrize(("rule", "w1"), [(TANH_BY_EXP, 1e-3), (TANH_BY_EXP, 1e-8), (ELU_BY_EXP, -1e-8),
                                          (SOFTPLUS_BY_LOG, -9.85)],
                         ids=["tanh-1e-3", "tanh-1e-8", "elu-1e-8", "softplus-9.85"])
def test_a_textbook_formula_that_rounds_differently_agrees_inside_a_network(rule, w1):
    """Before: DIFFERS at 1e−13 … 1 relative — the witnesses' exact tanh(z) against the
    formula's rounded one, blamed on the derivative."""
    assert _one_unit(rule, w1) == AGREES


def test_a_value_that_is_another_function_is_not_taken_by_the_witnesses():
    """Anchoring takes your value only within a correct formula's rounding: tanh off by 1e−6
    relative keeps torch's own in the witnesses, and the network differs."""
    off = UserActivation("tanh_off", lambda z: np.tanh(z) * (1 + 1e-6), lambda z, a: 1 - np.tanh(z) ** 2,
                         torch=torch.tanh, jax=jnp.tanh)
    assert _one_unit(off, 0.5) == DIFFERS
    z, f = np.array([0.5]), np.tanh(np.array([0.5]))
    allowed = value_allowance(z, f, 1 - f**2, Scale(1.0, 1.0), np.float64)
    assert anchor(f * (1 + 1e-6), f, allowed)[0] == f[0]
    assert anchor(f + 1e-16, f, allowed)[0] == f[0] + 1e-16


def test_a_formula_that_loses_precision_gets_a_note_not_a_verdict():
    """log(exp(z) + 1) at z = −9.85 is 2e−12 off relative: before, "WRONG forward"."""
    findings = grid_findings(guarded(SOFTPLUS_BY_LOG))
    assert findings.mismatches == []
    [note] = findings.notes
    assert note.quantity == "value" and note.z < -5 and 1e-14 < note.relative < 1e-9
    assert "np.logaddexp(0, z)" in str(note)
    report = check(SOFTPLUS_BY_LOG, 10)
    assert report.verdict == AGREES, report.message
    assert str(note) in str(report)


@pytest.mark.parametrize("rule", [GELU_TANH, GELU_ERF], ids=["tanh-form", "erf-form"])
def test_gelu_verifies_where_its_witnesses_round_apart_in_the_tails(rule):
    """torch and jax differ by ~1e−15 at z ≈ −7 (torch −0): before, NOT VERIFIED in every form.
    Those points are judged against the function's scale, and the report says so."""
    findings = grid_findings(guarded(rule))
    assert findings.mismatches == []
    assert findings.unjudged is not None and findings.unjudged.z < -5
    assert "judged against the rounding of the function's scale" in str(findings.unjudged)


def test_gelu_verifies_inside_networks():
    report = check(GELU_TANH, 10)
    assert report.verdict == AGREES, report.message


def test_a_gelu_derivative_off_by_1e_4_is_wrong_where_it_is_off():
    """Off by 1e−4 relative around z = −2 (and less elsewhere): WRONG, placed there, not at
    z = −10, where the values are 1e−22 and a relative error is largest."""
    slip = dataclasses.replace(GELU_TANH, name="gelu_slip", derivative=lambda z, a: gelu_tanh_derivative(z, a)
                               * (1 + 1e-4 * np.exp(-(z + 2) ** 2)))
    mismatches = grid_findings(guarded(slip)).mismatches
    assert [m.quantity for m in mismatches] == ["derivative", "derivative"]
    assert all(-3 < m.z < -1 for m in mismatches)
    assert check(slip, 10).verdict == WRONG


def _exp_three_deep(derivative_factor: float, z3: float = 600.0) -> str:
    """exp ∘ exp ∘ exp, the last at z₃ = 600, then identity back to O(1)."""
    rule = UserActivation("exp_user", np.exp, lambda z, a: a * derivative_factor, torch=torch.exp,
                          jax=jnp.exp)
    a1, a2 = np.exp(1.0), np.exp(2.0)
    params = {"W1": np.array([[1.0]]), "b1": np.array([0.0]), "W2": np.array([[2.0 / a1]]),
              "b2": np.array([0.0]), "W3": np.array([[z3 / a2]]), "b3": np.array([0.0]),
              "W4": np.array([[np.exp(-z3)]]), "b4": np.array([0.0])}
    with REGISTRY.scoped(rule):
        spec = Spec((1, 1, 1, 1, 1), ("exp_user",) * 3 + ("identity",), bias="vector")
        problem = Problem(spec, params, np.array([[1.0]]), np.array([[0.5]]), 0.1)
        return compare_rule(RULES["derived"], problem, ask_witnesses(problem)).verdict


def test_finite_differences_do_not_decide_where_their_steps_round_in_z():
    """At z = 600 a step of 6e−6 lands in z off by 2e−8 of itself: before, finite differences
    alone said DIFFERS (4.6e−9 against 2.1e−9) where torch and jax agreed."""
    assert _exp_three_deep(1.0) == AGREES
    assert _exp_three_deep(1 + 1e-4) == DIFFERS


def test_a_jax_forward_with_another_derivative_is_the_witnesses_disagreeing():
    """tanh's value with the identity's derivative in jax: before, "200 random networks agree"
    (the grid did not compare the witnesses' derivatives); now NOT VERIFIED, named."""
    odd = UserActivation("tanh_odd_jax", np.tanh, lambda z, a: 1 - np.tanh(z) ** 2, torch=torch.tanh,
                         jax=lambda z: z - jax.lax.stop_gradient(z - jnp.tanh(z)))
    [split] = grid_findings(guarded(odd)).mismatches
    assert (split.quantity, split.witness) == ("derivative", "jax vs torch")
    report = check(odd, 10)
    assert report.verdict == NOT_VERIFIED and "the witnesses disagree among themselves" in report.message


def test_a_forward_torch_cannot_differentiate_twice_is_checked():
    """F.hardsigmoid's backward has no derivative: before, check() raised RuntimeError from
    inside bpcheck, for the correct activation and its twin alike."""
    hard = UserActivation("hard_sigmoid_user", lambda z: np.clip(z / 6 + 0.5, 0.0, 1.0),
                          lambda z, a: np.where(np.abs(z) < 3, 1 / 6, 0.0), torch=F.hardsigmoid,
                          jax=jax.nn.hard_sigmoid, kinks=(-3.0, 3.0))
    assert grid_findings(guarded(hard)).mismatches == []
    slip = dataclasses.replace(hard, name="hard_sigmoid_slip", derivative=lambda z, a: np.where(
        np.abs(z) < 3, 1 / 5, 0.0))
    assert {m.quantity for m in grid_findings(guarded(slip)).mismatches} == {"derivative"}


@pytest.mark.parametrize("w2, y", [(0.0, 0.0), (2.0**-23, 1.0)], ids=["at-the-clip", "within-h-of-it"])
def test_finite_differences_do_not_decide_on_a_kink_of_a_clipped_loss(w2, y):
    """BCE on probabilities clipped to [1e−7, 1 − 1e−7] after a tanh output. At exactly 0 the
    loss has a kink: before, finite differences alone said DIFFERS (0.49 against torch's and
    jax's 0); their Richardson estimate cannot see a kink, the gap of one-sided slopes does.
    At p = 1.8e−7, 0.8e−7 from the clip (the corpus's seed-2 draw), the step h = 6e−6 spans the
    kink and −log p's curvature: the estimate is 1.1·|D_h| and the error 12·|D_h| (DIFFERS
    before); an estimate that size is no bound, and torch and jax decide."""
    from bpcheck import UserLoss

    eps = 1e-7

    def per_sample(p, y):
        p = np.clip(p, eps, 1 - eps)
        return -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p), axis=-2)

    def gradient(p, y):
        q = np.clip(p, eps, 1 - eps)
        return (-(y / q) + (1 - y) / (1 - q)) * ((p > eps) & (p < 1 - eps))

    clipped = UserLoss("bce_clipped_user", per_sample, gradient, targets="probabilities",
                       torch=lambda p, y: -(y * torch.log(p.clamp(eps, 1 - eps))
                                            + (1 - y) * torch.log(1 - p.clamp(eps, 1 - eps))).sum(dim=1),
                       jax=lambda p, y: -jnp.sum(y * jnp.log(jnp.clip(p, eps, 1 - eps))
                                                 + (1 - y) * jnp.log(1 - jnp.clip(p, eps, 1 - eps)), axis=0))
    with REGISTRY.scoped(clipped):
        spec = Spec((1, 1, 1), ("sigmoid", "tanh"), loss=clipped.name)
        problem = Problem(spec, {"W1": np.array([[0.0, 0.0]]), "W2": np.array([[w2, w2]])},
                          np.array([[1.0]]), np.array([[y]]), 0.1)
        assert compare_rule(RULES["derived"], problem, ask_witnesses(problem)).verdict != DIFFERS
