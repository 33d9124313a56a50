"""Activations: each value σ(z) sits beside its hand-derived derivative σ′(z).

Arrays are laid out features × samples. Every derivative is computed from the
pre-activation ``z`` (and may reuse ``a = σ(z)``), never from ``a`` alone where that loses
digits: ``1 − σ(z)`` cancels catastrophically when σ(z) ≈ 1, so σ′ uses ``σ(z)·σ(−z)``.
All formulas are written with ``e^{−|z|}`` so that no exponential overflows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Activation:
    """An elementwise activation: ``value(z) = σ(z)`` and ``derivative(z, a) = σ′(z)``."""

    name: str
    value: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray, np.ndarray], np.ndarray]

    def vjp(self, z: np.ndarray, a: np.ndarray, upstream: np.ndarray) -> np.ndarray:
        """∂L/∂z = ∂L/∂a ⊙ σ′(z) (elementwise activations have a diagonal Jacobian)."""
        return upstream * self.derivative(z, a)


ACTIVATIONS: dict[str, Activation] = {}


def register(activation: Activation) -> Activation:
    """Add an activation to the registry every rule, witness and test iterates."""
    ACTIVATIONS[activation.name] = activation
    return activation


def sigmoid(z: np.ndarray) -> np.ndarray:
    r"""σ(z) = 1 / (1 + e^{−z}), evaluated as 1/(1+e^{−|z|}) for z ≥ 0 and e^{−|z|}/(1+e^{−|z|}) else."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0, e) / (1.0 + e)


def sigmoid_derivative(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    r"""σ′(z) = σ(z)(1 − σ(z)) = σ(z)·σ(−z)."""
    return a * sigmoid(-z)


register(Activation("sigmoid", sigmoid, sigmoid_derivative))


def tanh(z: np.ndarray) -> np.ndarray:
    r"""tanh(z) = (e^{z} − e^{−z}) / (e^{z} + e^{−z})."""
    return np.tanh(z)


def tanh_derivative(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    r"""tanh′(z) = 1 − tanh²(z) = sech²(z) = 4t / (1 + t)², t = e^{−2|z|}."""
    t = np.exp(-2.0 * np.abs(z))
    return 4.0 * t / (1.0 + t) ** 2


register(Activation("tanh", tanh, tanh_derivative))


def relu(z: np.ndarray) -> np.ndarray:
    r"""relu(z) = max(z, 0)."""
    return np.maximum(z, 0)


def relu_derivative(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    r"""relu′(z) = 1 if z > 0 else 0 (at the kink z = 0 the derivative is taken as 0)."""
    return (z > 0).astype(z.dtype)


register(Activation("relu", relu, relu_derivative))
