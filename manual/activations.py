"""Activations: each value σ(z) sits beside its hand-derived derivative σ′(z).

Arrays are laid out units × samples. Derivatives are computed from the pre-activation ``z``
(and may reuse ``a = σ(z)``), never from ``a`` alone where that loses digits: ``1 − σ(z)``
cancels catastrophically when σ(z) ≈ 1, so σ′ uses ``σ(z)·σ(−z)``. Formulas use ``e^{−|z|}``
so that no exponential overflows. ``softmax`` mixes units: its backward pass is a
vector–Jacobian product, never a materialised Jacobian.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from manual.spec import Array, parse_activation


@dataclass(frozen=True)
class Activation:
    """``value(z) = σ(z)``; ``derivative(z, a) = σ′(z)`` for elementwise σ, else ``vjp``."""

    name: str
    value: Callable[[Array], Array]
    derivative: Callable[[Array, Array], Array] | None = None
    jacobian_vjp: Callable[[Array, Array, Array], Array] | None = None

    def vjp(self, z: Array, a: Array, upstream: Array) -> Array:
        """∂L/∂z from ∂L/∂a: ∂L/∂a ⊙ σ′(z) for elementwise σ (a diagonal Jacobian)."""
        if self.jacobian_vjp is not None:
            return self.jacobian_vjp(z, a, upstream)
        return upstream * self.derivative(z, a)


#: name → factory(parameter) → Activation; the parameter is None unless the name takes one.
ACTIVATIONS: dict[str, Callable[[float | None], Activation]] = {}


def register(name: str, factory: Callable[[float | None], Activation]) -> None:
    """Add an activation to the registry every rule, witness and test iterates."""
    ACTIVATIONS[name] = factory


def activation(name: str) -> Activation:
    """The activation a spec names, e.g. ``"tanh"`` or ``"leaky_relu:0.2"``."""
    base, parameter = parse_activation(name)
    return ACTIVATIONS[base](parameter)


def sigmoid(z: Array) -> Array:
    r"""σ(z) = 1/(1 + e^{−z}) = 1/(1 + e^{−|z|}) if z ≥ 0 else e^{−|z|}/(1 + e^{−|z|})."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0, e) / (1.0 + e)


def sigmoid_derivative(z: Array, a: Array) -> Array:
    r"""σ′(z) = σ(z)(1 − σ(z)) = σ(z)·σ(−z)."""
    return a * sigmoid(-z)


register("sigmoid", lambda _: Activation("sigmoid", sigmoid, sigmoid_derivative))


def tanh(z: Array) -> Array:
    r"""tanh(z) = (e^{z} − e^{−z}) / (e^{z} + e^{−z})."""
    return np.tanh(z)


def tanh_derivative(z: Array, a: Array) -> Array:
    r"""tanh′(z) = 1 − tanh²(z) = sech²(z) = 4t/(1 + t)², t = e^{−2|z|}."""
    t = np.exp(-2.0 * np.abs(z))
    return 4.0 * t / (1.0 + t) ** 2


register("tanh", lambda _: Activation("tanh", tanh, tanh_derivative))


def relu(z: Array) -> Array:
    r"""relu(z) = max(z, 0)."""
    return np.maximum(z, 0)


def relu_derivative(z: Array, a: Array) -> Array:
    r"""relu′(z) = 1 if z > 0 else 0 (at the kink z = 0 the derivative is taken as 0)."""
    return (z > 0).astype(z.dtype)


register("relu", lambda _: Activation("relu", relu, relu_derivative))


def leaky_relu(slope: float) -> Activation:
    r"""leaky_relu(z) = z if z > 0 else s·z; its derivative is 1 if z > 0 else s (s at z = 0)."""

    def value(z: Array) -> Array:
        r"""f(z) = z if z > 0 else s·z."""
        return np.where(z > 0, z, z * z.dtype.type(slope))

    def derivative(z: Array, a: Array) -> Array:
        r"""f′(z) = 1 if z > 0 else s (the kink z = 0 takes s)."""
        return np.where(z > 0, 1, slope).astype(z.dtype)

    return Activation(f"leaky_relu:{slope:g}", value, derivative)


register("leaky_relu", leaky_relu)


def softplus(z: Array) -> Array:
    r"""softplus(z) = log(1 + e^{z}) = max(z, 0) + log1p(e^{−|z|})."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def softplus_derivative(z: Array, a: Array) -> Array:
    r"""softplus′(z) = σ(z)."""
    return sigmoid(z)


register("softplus", lambda _: Activation("softplus", softplus, softplus_derivative))


def identity(z: Array) -> Array:
    r"""identity(z) = z."""
    return z


def identity_derivative(z: Array, a: Array) -> Array:
    r"""identity′(z) = 1."""
    return np.ones_like(z)


register("identity", lambda _: Activation("identity", identity, identity_derivative))


def softmax(z: Array) -> Array:
    r"""softmax(z)_c = e^{z_c − m} / Σ_k e^{z_k − m}, m = max_k z_k, over units (axis 0)."""
    e = np.exp(z - np.max(z, axis=0, keepdims=True))
    return e / np.sum(e, axis=0, keepdims=True)


def softmax_vjp(z: Array, a: Array, upstream: Array) -> Array:
    r"""∂L/∂z = a ⊙ (g − Σ_c a_c g_c), g = ∂L/∂a: Jᵀg with J = diag(a) − a aᵀ, never formed."""
    return a * (upstream - np.sum(a * upstream, axis=0, keepdims=True))


register("softmax", lambda _: Activation("softmax", softmax, jacobian_vjp=softmax_vjp))
