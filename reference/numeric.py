r"""Witness 3: central finite differences in float64, with an error estimate per entry.

For each parameter entry θ_i the step is h_i = u^{1/3}·max(1, |θ_i|) (u = 2^{-53}), rounded
so that θ_i ± h_i is exact, and

.. math::
    D_h = \frac{L(θ + h e_i) − L(θ − h e_i)}{2h} = ∂_iL + \frac{h^2}{6} ∂_i^3L + O(h^4).

Since D_{2h} − D_h ≈ 3·(h²/6)·∂³L, the truncation error of D_h is estimated as
|D_{2h} − D_h| / 3; the rounding error as u·m·(|L(θ+h)| + |L(θ−h)| + T)/(2h), m the layer
work and T the loss terms' own rounding: N·C terms that each round by ~u even where L itself
cancels to 0, or, for losses on probabilities, Σ 1/min(p, 1 − p) (log(1 − p) of a rounded p).
The loss is evaluated by this module's own batched NumPy/SciPy forward pass (all perturbed
copies at once); it reads only the model description from ``manual.spec``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import expit, log_softmax, softmax, xlogy

from manual.spec import Params, Spec, param_shapes, parse_activation, takes_probabilities, target_kind

TITLE = "finite differences"  # as reports name this witness

#: name → factory(parameter) → function of (..., N, units) pre-activations.
ACTIVATIONS = {
    "sigmoid": lambda _: expit,
    "tanh": lambda _: np.tanh,
    "relu": lambda _: lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda slope: lambda z: np.where(z > 0, z, slope * z),
    "softplus": lambda _: lambda z: np.logaddexp(z, 0.0),
    "identity": lambda _: lambda z: z,
    "softmax": lambda _: lambda z: softmax(z, axis=-1),
}


def _bce(p, y):
    """−Σ [y log p + (1 − y) log(1 − p)], logs clamped at −100 (p ∈ [0, 1])."""
    with np.errstate(divide="ignore"):
        return -np.sum(np.maximum(xlogy(y, p), -100 * y) + np.maximum(xlogy(1 - y, 1 - p), -100 * (1 - y)),
                       axis=-1)


#: name → per-sample loss of (..., N, C) predictions and targets, or (N,) labels.
LOSSES = {
    "half-sse": lambda p, y: 0.5 * np.square(p - y).sum(axis=-1),
    "mse": lambda p, y: np.square(p - y).mean(axis=-1),
    "bce": _bce,
    "bce-logits": lambda z, y: np.sum(np.logaddexp(0.0, z) - z * y, axis=-1),
    "softmax-ce": lambda z, y: -np.sum(y * log_softmax(z, axis=-1), axis=-1),
    "softmax-ce-labels": lambda z, y: -np.take_along_axis(
        log_softmax(z, axis=-1), np.broadcast_to(y[:, None], (*z.shape[:-1], 1)), axis=-1)[..., 0],
}


def activation(name: str):
    base, parameter = parse_activation(name)
    return ACTIVATIONS[base](parameter)

UNIT_ROUNDOFF = np.finfo(np.float64).eps / 2
BLOCK = 512  # perturbed copies evaluated per batched forward pass, at most
BLOCK_ELEMENTS = 2**22  # and at most this many floats in one copy-batched layer or parameter set


def _rows(spec: Spec, array: np.ndarray) -> np.ndarray:
    if target_kind(spec.loss) == "labels" and np.asarray(array).ndim == 1:
        return np.asarray(array, dtype=np.int64)
    return np.asarray(array if spec.layout == "rows" else array.T, dtype=np.float64)


def forward(spec: Spec, params: Params, X: np.ndarray):
    """Layer inputs ã_0 … ã_{L-1}, pre-activations z_1 … z_L and the output a_L, as rows."""
    batched = {name: np.asarray(value, dtype=np.float64)[None] for name, value in params.items()}
    output, zs, inputs = _forward(spec, batched, _rows(spec, X))
    return [a[0] for a in inputs], [z[0] for z in zs], output[0]


def preactivations(spec: Spec, params: Params, X: np.ndarray) -> list[np.ndarray]:
    """z_k of every layer (samples × units), for keeping test inputs away from kinks."""
    return forward(spec, params, X)[1]


def _forward(spec: Spec, batched: dict[str, np.ndarray], x: np.ndarray):
    """Outputs (B, N, C), pre-activations and layer inputs for a batch of B parameter sets."""
    a = np.broadcast_to(x, (next(iter(batched.values())).shape[0], *x.shape))
    zs, inputs = [], []
    for k, name in enumerate(spec.activations, start=1):
        if spec.bias == "node":
            a = np.concatenate([a, np.ones((*a.shape[:-1], 1))], axis=-1)
        inputs.append(a)
        with np.errstate(invalid="ignore"):  # OpenBLAS can flag "invalid" spuriously; NaNs still show
            z = a @ np.swapaxes(batched[f"W{k}"], -1, -2)
        if spec.bias == "vector":
            z = z + batched[f"b{k}"][:, None, :]
        zs.append(z)
        a = activation(name)(z)
    return a, zs, inputs


def _batched_loss(spec: Spec, batched: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray):
    per_sample = LOSSES[spec.loss](_forward(spec, batched, x)[0], y)
    total = per_sample.mean(axis=-1) if spec.reduction == "mean" else per_sample.sum(axis=-1)
    penalty = sum(np.sum(np.square(batched[f"W{k}"][..., : spec.sizes[k - 1]]), axis=(-2, -1))
                  for k in range(1, spec.depth + 1))
    if spec.l2_biases:  # (B, units) per layer: the bias vector, or the bias node's column
        penalty = penalty + sum(
            np.sum(np.square(batched[f"b{k}"] if spec.bias == "vector"
                             else batched[f"W{k}"][..., spec.sizes[k - 1]]), axis=-1)
            for k in range(1, spec.depth + 1))
    return total + 0.5 * spec.l2 * penalty


def gradients_with_error(
    spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, entries: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Params, Params]:
    """Central differences ∂L/∂θ and an estimate of their absolute error, both keyed by name.

    ``entries`` (flat indices into the parameters in spec order) limits the work to those
    entries; the others are NaN in both results. ``progress(done, total)`` is called after
    each block of entries."""
    shapes = param_shapes(spec)
    theta = np.concatenate([np.asarray(params[n], dtype=np.float64).ravel() for n in shapes])
    x, y = _rows(spec, X), _rows(spec, Y)
    h = np.cbrt(UNIT_ROUNDOFF) * np.maximum(1.0, np.abs(theta))
    h = (theta + h) - theta  # exactly representable steps
    losses = np.full((4, theta.size), np.nan)  # rows: +h, −h, +2h, −2h
    chosen = np.arange(theta.size) if entries is None else np.asarray(entries, dtype=np.int64)
    block = _block_size(spec, x.shape[0], theta.size)
    for start in range(0, chosen.size, block):
        index = chosen[start:start + block]
        for row, factor in enumerate((1.0, -1.0, 2.0, -2.0)):
            perturbed = np.tile(theta, (index.size, 1))
            perturbed[np.arange(index.size), index] += factor * h[index]
            losses[row, index] = _batched_loss(spec, _unflatten(perturbed, shapes), x, y)
        if progress is not None:
            progress(min(start + block, chosen.size), chosen.size)
    d_h = (losses[0] - losses[1]) / (2 * h)
    d_2h = (losses[2] - losses[3]) / (4 * h)
    work = (1 + max(spec.sizes)) * spec.depth * x.shape[0]
    terms = _term_rounding(spec, params, x)  # each loss term rounds, even where the loss cancels
    rounding = UNIT_ROUNDOFF * work * (np.abs(losses[0]) + np.abs(losses[1]) + terms) / (2 * h)
    error = np.abs(d_2h - d_h) / 3 + rounding
    return _unflatten(d_h, shapes), _unflatten(error, shapes)


def _block_size(spec: Spec, n_samples: int, n_params: int) -> int:
    """Copies per batched pass: BLOCK, fewer where one copy's widest layer (N × width) or
    its parameter vector would make a block exceed BLOCK_ELEMENTS floats."""
    per_copy = max(n_samples * (max(spec.sizes) + 1), n_params)
    return int(max(1, min(BLOCK, BLOCK_ELEMENTS // per_copy)))


def _term_rounding(spec: Spec, params: Params, x: np.ndarray) -> float:
    """Σ over loss terms of their rounding in units of u: 1 each, but a loss on probabilities
    sees p rounded by u·p, so log(1 − p) and log p round by u/min(p, 1 − p)."""
    if not takes_probabilities(spec.loss):
        return float(x.shape[0] * spec.sizes[-1])
    batched = {name: np.asarray(value, dtype=np.float64)[None] for name, value in params.items()}
    p = _forward(spec, batched, x)[0][0]
    return float(np.sum(1.0 / np.maximum(np.minimum(p, 1.0 - p), UNIT_ROUNDOFF)))


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
