"""GELU in the three forms people write: the tanh approximation, the exact erf form (scipy's erf
and math.erf vectorised), and z·σ(1.702z) — a different function from torch's gelu, so its torch
and jax forwards are that same formula."""

from __future__ import annotations

import math

import jax
import numpy as np
import torch
import torch.nn.functional as F
from jax.scipy.special import erf as jax_erf
from scipy.special import erf

from corpus_code.activations import _pair

C = math.sqrt(2 / math.pi)
K = 0.044715


def gelu_tanh(z):
    return 0.5 * z * (1 + np.tanh(C * (z + K * z ** 3)))


def gelu_tanh_derivative(z, a):
    t = np.tanh(C * (z + K * z ** 3))
    return 0.5 * (1 + t) + 0.5 * z * (1 - t ** 2) * C * (1 + 3 * K * z ** 2)


def gelu_tanh_derivative_wrong(z, a):  # d/dz z³ written z²
    t = np.tanh(C * (z + K * z ** 3))
    return 0.5 * (1 + t) + 0.5 * z * (1 - t ** 2) * C * (1 + K * z ** 2)


def gelu_erf(z):
    return 0.5 * z * (1 + erf(z / np.sqrt(2)))


def gelu_erf_derivative(z, a):
    """Φ(z) + z φ(z)."""
    return 0.5 * (1 + erf(z / np.sqrt(2))) + z * np.exp(-z ** 2 / 2) / np.sqrt(2 * np.pi)


_erf = np.vectorize(math.erf)


def gelu_math_erf(z):
    return z * 0.5 * (1.0 + _erf(z / math.sqrt(2.0)))


def gelu_math_erf_derivative(z, a):
    cdf = 0.5 * (1.0 + _erf(z / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return cdf + z * pdf


def gelu_math_erf_derivative_wrong(z, a):  # the product rule's z forgotten
    return 0.5 * (1.0 + _erf(z / math.sqrt(2.0))) + np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


ENTRIES = [
    _pair("gelu_tanh", "½z(1 + tanh(√(2/π)(z + 0.044715z³))); F.gelu(approximate='tanh')", gelu_tanh,
          gelu_tanh_derivative, gelu_tanh_derivative_wrong, "d/dz of z³ written z² (the 3 lost)",
          lambda z: F.gelu(z, approximate="tanh"), lambda z: jax.nn.gelu(z, approximate=True)),
    _pair("gelu_erf", "½z(1 + erf(z/√2)) with scipy.special.erf; F.gelu", gelu_erf,
          gelu_erf_derivative, gelu_tanh_derivative,
          "the tanh approximation's derivative (off by up to 8e-4 near z = −2)",
          F.gelu, lambda z: jax.nn.gelu(z, approximate=False)),
    _pair("gelu_math_erf", "math.erf vectorised, Φ(z) + zφ(z); erf written in torch/jnp", gelu_math_erf,
          gelu_math_erf_derivative, gelu_math_erf_derivative_wrong, "Φ + φ: the z of zφ lost",
          lambda z: z * 0.5 * (1 + torch.erf(z / math.sqrt(2))),
          lambda z: z * 0.5 * (1 + jax_erf(z / math.sqrt(2)))),
    _pair("gelu_sigmoid", "z·σ(1.702z) (a function of its own); the same formula in torch/jnp",
          lambda z: z * _sigmoid(1.702 * z),
          lambda z, a: _sigmoid(1.702 * z) + 1.702 * z * _sigmoid(1.702 * z) * (1 - _sigmoid(1.702 * z)),
          lambda z, a: _sigmoid(1.702 * z) + z * _sigmoid(1.702 * z) * (1 - _sigmoid(1.702 * z)),
          "the chain rule's 1.702 lost",
          lambda z: z * torch.sigmoid(1.702 * z), lambda z: z * jax.nn.sigmoid(1.702 * z)),
    _pair("gelu_sigmoid_jnp", "z·σ(1.702z), σ′ from a; F.silu(1.702z)/1.702 and jnp",
          lambda z: z * _sigmoid(1.702 * z),
          lambda z, a: _sigmoid(1.702 * z) * (1 + 1.702 * (z - a)),
          lambda z, a: _sigmoid(1.702 * z) * (1 + 1.702 * z - a),
          "z − a's 1.702 applied to z only",
          lambda z: F.silu(1.702 * z) / 1.702, lambda z: z * jax.nn.sigmoid(1.702 * z)),
]
