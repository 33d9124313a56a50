r"""Witness 3: central finite differences in float64, with an error estimate per entry.

For each parameter entry θ_i the step is h_i = u^{1/3}·max(1, |θ_i|) (u = 2^{-53}), rounded
so that θ_i ± h_i is exact, and

.. math::
    D_h = \frac{L(θ + h e_i) − L(θ − h e_i)}{2h} = ∂_iL + \frac{h^2}{6} ∂_i^3L + O(h^4).

Since D_{2h} − D_h ≈ 3·(h²/6)·∂³L, the truncation error of D_h is estimated as
|D_{2h} − D_h| / 3; the rounding error as u·m·(|L(θ+h)| + |L(θ−h)|)/(2h), m the layer work.
The loss is evaluated by this module's own batched NumPy/SciPy forward pass (all perturbed
copies at once); it reads only the model description from ``manual.spec``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from manual.spec import Params, Spec, param_shapes

ACTIVATIONS = {
    "sigmoid": expit,
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
}

#: Per-sample loss of (..., N, C) predictions and targets.
LOSSES = {
    "half-sse": lambda p, y: 0.5 * np.square(p - y).sum(axis=-1),
}

UNIT_ROUNDOFF = np.finfo(np.float64).eps / 2
BLOCK = 512  # perturbed copies evaluated per batched forward pass


def _rows(spec: Spec, array: np.ndarray) -> np.ndarray:
    return np.asarray(array if spec.layout == "rows" else array.T, dtype=np.float64)


def preactivations(spec: Spec, params: Params, X: np.ndarray) -> list[np.ndarray]:
    """z_k of every layer (samples × units), for keeping test inputs away from kinks."""
    batched = {name: np.asarray(value, dtype=np.float64)[None] for name, value in params.items()}
    return [z[0] for z in _forward(spec, batched, _rows(spec, X))[1]]


def _forward(spec: Spec, batched: dict[str, np.ndarray], x: np.ndarray):
    """Outputs (B, N, C) and pre-activations for a batch of B parameter sets."""
    a = np.broadcast_to(x, (next(iter(batched.values())).shape[0], *x.shape))
    zs = []
    for k, name in enumerate(spec.activations, start=1):
        if spec.bias == "node":
            a = np.concatenate([a, np.ones((*a.shape[:-1], 1))], axis=-1)
        z = a @ np.swapaxes(batched[f"W{k}"], -1, -2)
        if spec.bias == "vector":
            z = z + batched[f"b{k}"][:, None, :]
        zs.append(z)
        a = ACTIVATIONS[name](z)
    return a, zs


def _batched_loss(spec: Spec, batched: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray):
    per_sample = LOSSES[spec.loss](_forward(spec, batched, x)[0], y)
    return per_sample.mean(axis=-1) if spec.reduction == "mean" else per_sample.sum(axis=-1)


def gradients_with_error(
    spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray
) -> tuple[Params, Params]:
    """Central differences ∂L/∂θ and an estimate of their absolute error, both keyed by name."""
    shapes = param_shapes(spec)
    theta = np.concatenate([np.asarray(params[n], dtype=np.float64).ravel() for n in shapes])
    x, y = _rows(spec, X), _rows(spec, Y)
    h = np.cbrt(UNIT_ROUNDOFF) * np.maximum(1.0, np.abs(theta))
    h = (theta + h) - theta  # exactly representable steps
    losses = np.empty((4, theta.size))  # rows: +h, −h, +2h, −2h
    for start in range(0, theta.size, BLOCK):
        index = np.arange(start, min(start + BLOCK, theta.size))
        for row, factor in enumerate((1.0, -1.0, 2.0, -2.0)):
            perturbed = np.tile(theta, (index.size, 1))
            perturbed[np.arange(index.size), index] += factor * h[index]
            losses[row, index] = _batched_loss(spec, _unflatten(perturbed, shapes), x, y)
    d_h = (losses[0] - losses[1]) / (2 * h)
    d_2h = (losses[2] - losses[3]) / (4 * h)
    work = (1 + max(spec.sizes)) * spec.depth * x.shape[0]
    rounding = UNIT_ROUNDOFF * work * (np.abs(losses[0]) + np.abs(losses[1])) / (2 * h)
    error = np.abs(d_2h - d_h) / 3 + rounding
    return _unflatten(d_h, shapes), _unflatten(error, shapes)


def _unflatten(flat: np.ndarray, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Split the last axis of ``flat`` into named parameter arrays (keeping leading axes)."""
    out, offset = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        out[name] = flat[..., offset:offset + size].reshape(*flat.shape[:-1], *shape)
        offset += size
    return out


def loss(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray) -> float:
    """L in float64 from this module's own forward pass."""
    batched = {name: np.asarray(value, dtype=np.float64)[None] for name, value in params.items()}
    return float(_batched_loss(spec, batched, _rows(spec, X), _rows(spec, Y))[0])


def gradients(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """∂L/∂θ by central differences."""
    return gradients_with_error(spec, params, X, Y)[0]


def sgd_step(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, lr: float) -> Params:
    """θ − η·D_h with the finite-difference gradient."""
    grads = gradients(spec, params, X, Y)
    return {name: np.asarray(params[name], dtype=np.float64) - lr * grads[name] for name in grads}
