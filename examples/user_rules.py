"""Two user-defined activations for ``bpcheck verify``: swish, derived correctly and not.

    bpcheck verify examples/user_rules.py:swish         # agrees: exit 0
    bpcheck verify examples/user_rules.py:swish_wrong   # caught: exit 1, minimal network shown
"""

import jax
import torch
from scipy.special import expit

from bpcheck import UserActivation


def swish(z):
    """swish(z) = z·σ(z)."""
    return z * expit(z)


def swish_derivative(z, a):
    """swish′(z) = σ(z) + z·σ(z)(1 − σ(z)) = σ(z) + a·(1 − σ(z))."""
    s = expit(z)
    return s + a * (1.0 - s)


def swish_derivative_wrong(z, a):
    """A subtle slip: a(1 − a) written for σ(z)(1 − σ(z)) — right at z = 0, wrong elsewhere."""
    return expit(z) + z * a * (1.0 - a)


swish = UserActivation("swish", swish, swish_derivative,
                       torch=lambda z: z * torch.sigmoid(z), jax=lambda z: z * jax.nn.sigmoid(z))
swish_wrong = UserActivation("swish_wrong", swish.value, swish_derivative_wrong,
                             torch=swish.torch, jax=swish.jax)
