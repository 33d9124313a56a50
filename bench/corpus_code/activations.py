"""Activations as textbooks, course notes and from-scratch libraries write them, each in two or
more forms, with the user's honest torch and jax forwards (F.*, jax.nn.* or the same formula).

Each ``_pair`` is (correct, twin): the twin has the same value and forwards and one slip in the
derivative. GELU lives in ``gelu.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import expit

from bpcheck import UserActivation
from corpus_code import Entry


def _pair(name: str, form: str, value, derivative, wrong, slip: str, torch_fn, jax_fn,
          **declared) -> Entry:
    """An entry whose twin differs only in its derivative."""
    correct = UserActivation(name, value, derivative, torch=torch_fn, jax=jax_fn, **declared)
    twin = UserActivation(f"{name}_twin", value, wrong, torch=torch_fn, jax=jax_fn, **declared)
    return Entry(name, "activation", form, correct, twin, slip)


# ELU (α = 1) ---------------------------------------------------------------------------------
def elu_exp(z):
    return np.where(z > 0, z, np.exp(z) - 1)


def elu_expm1(z):
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))


# softplus -------------------------------------------------------------------------------------
def softplus_log1p(z):
    return np.log(1 + np.exp(z))


def softplus_exp_plus_1(z):
    return np.log(np.exp(z) + 1)


# tanh -----------------------------------------------------------------------------------------
def tanh_sigmoid_form(z):
    return 2 / (1 + np.exp(-2 * z)) - 1


def tanh_ratio(z):
    z = np.clip(z, -20, 20)  # guard: exp overflows past 709, and tanh(20) is 1 in float64
    return (np.exp(z) - np.exp(-z)) / (np.exp(z) + np.exp(-z))


def sech2_ratio(z, a):
    z = np.clip(z, -20, 20)
    return 4 / (np.exp(z) + np.exp(-z)) ** 2


# sigmoid --------------------------------------------------------------------------------------
def sigmoid_exp(z):
    return 1 / (1 + np.exp(-z))


def sigmoid_via_tanh(z):
    return 0.5 * (1 + np.tanh(z / 2))


# swish / SiLU, mish, softsign -----------------------------------------------------------------
def silu(z):
    return z / (1 + np.exp(-z))


def mish(z):
    return z * np.tanh(np.log1p(np.exp(z)))


def mish_derivative(z, a):
    sp = np.log1p(np.exp(z))
    return np.tanh(sp) + z * (1 - np.tanh(sp) ** 2) * expit(z)


def mish_derivative_wrong(z, a):  # softplus′ = σ(z) forgotten
    sp = np.log1p(np.exp(z))
    return np.tanh(sp) + z * (1 - np.tanh(sp) ** 2)


def softsign(z):
    return z / (1 + np.abs(z))


# hard-tanh, hard-sigmoid, leaky relu (kinked) --------------------------------------------------
def hard_sigmoid(z):
    return np.clip(z / 6 + 0.5, 0, 1)  # torch's and jax's: relu6(z + 3) / 6


def leaky(z):
    return np.where(z > 0, z, 0.01 * z)


def leaky_max(z):
    return np.maximum(0.2 * z, z)


ENTRIES = [
    _pair("elu_exp", "ELU as where(z > 0, z, exp(z) − 1); F.elu", elu_exp,
          lambda z, a: np.where(z > 0, 1.0, np.exp(z)),
          lambda z, a: np.where(z > 0, 1.0, a), "σ′ = a for z < 0 (α forgotten: a + α)",
          F.elu, jax.nn.elu),
    _pair("elu_expm1", "ELU with expm1, σ′ = a + 1 from the output; jax.nn.elu", elu_expm1,
          lambda z, a: np.where(z > 0, 1.0, a + 1),
          lambda z, a: np.where(z > 0, 1.0, np.expm1(z)), "σ′ = expm1(z) for exp(z)",
          lambda z: torch.where(z > 0, z, torch.expm1(z)), jax.nn.elu),
    _pair("softplus_log1p_exp", "softplus as log(1 + exp(z)); F.softplus", softplus_log1p,
          lambda z, a: 1 / (1 + np.exp(-z)),
          lambda z, a: 1 / (1 + np.exp(z)), "σ′ = σ(−z): the sign of the exponent",
          F.softplus, jax.nn.softplus),
    _pair("softplus_exp_plus_1", "softplus as log(exp(z) + 1), σ′ = e^z/(e^z + 1); formula in torch/jnp",
          softplus_exp_plus_1,
          lambda z, a: np.exp(z) / (np.exp(z) + 1),
          lambda z, a: np.exp(z) / (np.exp(z) + 1) ** 2, "the quotient rule squared the denominator",
          lambda z: torch.log(torch.exp(z) + 1), lambda z: jnp.log(jnp.exp(z) + 1)),
    _pair("softplus_logaddexp", "softplus as logaddexp(0, z), σ′ = 1 − exp(−a)",
          lambda z: np.logaddexp(0, z),
          lambda z, a: 1 - np.exp(-a),
          lambda z, a: np.exp(-a), "σ′ = exp(−a) = σ(−z)",
          lambda z: torch.logaddexp(torch.zeros_like(z), z), lambda z: jnp.logaddexp(0, z)),
    _pair("tanh_sigmoid_form", "tanh as 2/(1 + exp(−2z)) − 1, σ′ = 1 − a²; torch.tanh",
          tanh_sigmoid_form,
          lambda z, a: 1 - a ** 2,
          lambda z, a: 1 - a, "1 − a for 1 − a²",
          torch.tanh, jnp.tanh),
    _pair("tanh_ratio", "tanh as (e^z − e^−z)/(e^z + e^−z), clipped to ±20; σ′ = 4/(e^z + e^−z)²",
          tanh_ratio, sech2_ratio,
          lambda z, a: 2 / (np.exp(np.clip(z, -20, 20)) + np.exp(-np.clip(z, -20, 20))) ** 2,
          "2/(…)² for 4/(…)²: cosh's ½ lost", torch.tanh, jax.nn.tanh),
    _pair("tanh_np", "np.tanh, σ′ = 1 − tanh(z)²", np.tanh,
          lambda z, a: 1 - np.tanh(z) ** 2,
          lambda z, a: 1 / np.cosh(z), "sech for sech²",
          torch.tanh, jnp.tanh),
    _pair("sigmoid_exp", "σ = 1/(1 + exp(−z)), σ′ = a(1 − a); torch.sigmoid", sigmoid_exp,
          lambda z, a: a * (1 - a),
          lambda z, a: np.exp(-z) / (1 + np.exp(-z)), "e^−z/(1 + e^−z): the square lost",
          torch.sigmoid, jax.nn.sigmoid),
    _pair("sigmoid_via_tanh", "σ = ½(1 + tanh(z/2)), σ′ = ¼(1 − tanh²(z/2))", sigmoid_via_tanh,
          lambda z, a: 0.25 * (1 - np.tanh(z / 2) ** 2),
          lambda z, a: 0.5 * (1 - np.tanh(z / 2) ** 2), "the inner ½ of the chain rule lost",
          lambda z: 0.5 * (1 + torch.tanh(z / 2)), jax.nn.sigmoid),
    _pair("silu", "swish/SiLU as z/(1 + exp(−z)), σ′ = a + σ(1 − a); F.silu", silu,
          lambda z, a: a + expit(z) * (1 - a),
          lambda z, a: a + expit(z) * (1 - expit(z)), "σ(1 − σ) for σ(1 − a)",
          F.silu, jax.nn.silu),
    _pair("mish", "mish as z·tanh(log1p(exp(z))); F.mish", mish, mish_derivative,
          mish_derivative_wrong, "softplus′ = σ(z) left out of the chain",
          F.mish, lambda z: z * jnp.tanh(jax.nn.softplus(z))),
    _pair("softsign", "softsign z/(1 + |z|); F.softsign", softsign,
          lambda z, a: 1 / (1 + np.abs(z)) ** 2,
          lambda z, a: 1 / (1 + np.abs(z)), "the square lost",
          F.softsign, jax.nn.soft_sign),
    _pair("hard_tanh", "clip(z, −1, 1), σ′ = 1 inside, kinks ±1 declared", lambda z: np.clip(z, -1, 1),
          lambda z, a: ((z > -1) & (z < 1)).astype(z.dtype),
          lambda z, a: np.ones_like(z), "straight-through: σ′ = 1 everywhere",
          F.hardtanh, jax.nn.hard_tanh, kinks=(-1.0, 1.0), at_kinks=(0.0, 0.0)),
    _pair("hard_sigmoid", "clip(z/6 + ½, 0, 1), kinks ±3 declared; F.hardsigmoid", hard_sigmoid,
          lambda z, a: np.where(np.abs(z) < 3, 1 / 6, 0.0),
          lambda z, a: np.where(np.abs(z) < 3, 0.2, 0.0), "Keras's slope 0.2 for 1/6",
          F.hardsigmoid, jax.nn.hard_sigmoid, kinks=(-3.0, 3.0), at_kinks=(0.0, 0.0)),
    _pair("leaky_where", "where(z > 0, z, 0.01z), kink 0 declared", leaky,
          lambda z, a: np.where(z > 0, 1.0, 0.01),
          lambda z, a: np.where(z > 0, 1.0, 0.0), "the slope 0.01 forgotten (relu′)",
          lambda z: F.leaky_relu(z, 0.01), lambda z: jax.nn.leaky_relu(z, 0.01),
          kinks=(0.0,), at_kinks=(0.01,)),
    _pair("leaky_relu_max", "maximum(0.2z, z), kink 0 declared", leaky_max,
          lambda z, a: np.where(z > 0, 1.0, 0.2),
          lambda z, a: np.where(z > 0, 1.0, 0.2 * z), "0.2z (the value) for 0.2",
          lambda z: torch.maximum(0.2 * z, z), lambda z: jnp.maximum(0.2 * z, z),
          kinks=(0.0,), at_kinks=(0.2,)),
]
