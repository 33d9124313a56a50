r"""Witness 3: central finite differences in float64, with an error estimate per entry.

For each parameter entry θ_i the step is h_i = u^{1/3}·max(1, |θ_i|) (u = 2^{-53}), rounded
so that θ_i ± h_i is exact, and

.. math::
    D_h = \frac{L(θ + h e_i) − L(θ − h e_i)}{2h} = ∂_iL + \frac{h^2}{6} ∂_i^3L + O(h^4).

Since D_{2h} − D_h ≈ 3·(h²/6)·∂³L, the truncation error of D_h is estimated as
|D_{2h} − D_h| / 3, plus half of |Δ_{2h} − 2Δ_h|, Δ_h = (L(θ+h) − 2L(θ) + L(θ−h))/h the gap
between the one-sided slopes (h·L″ where L is smooth, so the term is h³L⁗/2; the jump of L′ where
θ sits on a kink — a clipped loss at its clip — so finite differences do not decide there),
plus ε·|D|, ε the largest relative error of the step as it lands in z
(z + r·h rounds to u·|z|: at z = 600 a step of 6e−6 is off by 2e−8 of itself, measured
exactly as the realised (z + r·h) − z against r·h); the rounding error as
u·m·(|L(θ+h)| + |L(θ−h)| + T)/(2h), m the layer
work and T the loss terms' own rounding: N·C terms that each round by ~u even where L itself
cancels to 0, or, for losses on probabilities, Σ 1/min(p, 1 − p) (log(1 − p) of a rounded p).
The loss is evaluated by this module's own NumPy/SciPy forward pass: an entry of layer k
moves only z_k, so the layers before it are shared and every perturbed copy of the layers
after it goes through one matrix product. It reads only the model description from
``manual.spec``.
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
BLOCK_ELEMENTS = 2**22  # floats in one block of perturbed copies of a layer, at most
STEPS = (1.0, -1.0, 2.0, -2.0)  # θ_i + factor·h_i, the four evaluations per entry


def _rows(spec: Spec, array: np.ndarray) -> np.ndarray:
    if target_kind(spec.loss) == "labels" and np.asarray(array).ndim == 1:
        return np.asarray(array, dtype=np.int64)
    return np.asarray(array if spec.layout == "rows" else array.T, dtype=np.float64)


def _weights(spec: Spec, params: Params) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(W_k, b_k or None) in float64 for k = 1 … L."""
    return [(np.asarray(params[f"W{k}"], np.float64),
             np.asarray(params[f"b{k}"], np.float64) if spec.bias == "vector" else None)
            for k in range(1, spec.depth + 1)]


def _layer(spec: Spec, weights, k: int, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Layer k's input ã (a with the bias node's 1 appended) and z_k = ã W_kᵀ (+ b_k), for
    rows a of any leading shape: one matrix product over all of them."""
    W, b = weights[k - 1]
    if spec.bias == "node":
        a = np.concatenate([a, np.ones((*a.shape[:-1], 1))], axis=-1)
    with np.errstate(invalid="ignore"):  # OpenBLAS can flag "invalid" spuriously; NaNs still show
        z = (a.reshape(-1, a.shape[-1]) @ W.T).reshape(*a.shape[:-1], W.shape[0])
    return a, z if b is None else z + b


def _output_from(spec: Spec, weights, k: int, z: np.ndarray) -> np.ndarray:
    """The network's output a_L from layer k's pre-activations z (…, N, units) on."""
    a = activation(spec.activations[k - 1])(z)
    for later in range(k + 1, spec.depth + 1):
        a = activation(spec.activations[later - 1])(_layer(spec, weights, later, a)[1])
    return a


def forward(spec: Spec, params: Params, X: np.ndarray):
    """Layer inputs ã_0 … ã_{L-1}, pre-activations z_1 … z_L and the output a_L, as rows."""
    return _forward(spec, _weights(spec, params), _rows(spec, X))


def _forward(spec: Spec, weights, a: np.ndarray):
    inputs, zs = [], []
    for k, name in enumerate(spec.activations, start=1):
        inputs_k, z = _layer(spec, weights, k, a)
        inputs.append(inputs_k)
        zs.append(z)
        a = activation(name)(z)
    return inputs, zs, a


def preactivations(spec: Spec, params: Params, X: np.ndarray) -> list[np.ndarray]:
    """z_k of every layer (samples × units), for keeping test inputs away from kinks."""
    return forward(spec, params, X)[1]


def _data_loss(spec: Spec, output: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The loss over the batch for outputs (…, N, C): summed or averaged per sample losses."""
    per_sample = LOSSES[spec.loss](output, y)
    return per_sample.mean(axis=-1) if spec.reduction == "mean" else per_sample.sum(axis=-1)


def _flat(spec: Spec, params: Params) -> np.ndarray:
    """θ: every parameter entry in float64, flat in spec order."""
    return np.concatenate([np.asarray(params[n], np.float64).ravel() for n in param_shapes(spec)])


def _penalty(spec: Spec, theta: np.ndarray, penalised: np.ndarray) -> float:
    """½λ‖θ‖² over the penalised entries (the mask from ``_entry_table``)."""
    return 0.5 * spec.l2 * float(np.sum(np.square(theta[penalised])))


def loss(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray) -> float:
    """L in float64 from this module's own forward pass."""
    output = forward(spec, params, X)[2]
    return float(_data_loss(spec, output, _rows(spec, Y))) + _penalty(spec, _flat(spec, params),
                                                                       _entry_table(spec)[3])


def _entry_table(spec: Spec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For every parameter entry, flat in spec order: its layer k, the unit i of z_k it
    moves, the column j of ã_{k−1} it multiplies (−1 for a bias vector's entry) and whether
    ½λ‖θ‖² includes it."""
    layer, unit, column, penalised = [], [], [], []
    for k in range(1, spec.depth + 1):
        units, columns = spec.sizes[k], spec.sizes[k - 1] + int(spec.bias == "node")
        i, j = np.divmod(np.arange(units * columns), columns)
        layer.append(np.full(i.size, k))
        unit.append(i)
        column.append(j)
        penalised.append(j < spec.sizes[k - 1] + int(spec.l2_biases))
        if spec.bias == "vector":
            layer.append(np.full(units, k))
            unit.append(np.arange(units))
            column.append(np.full(units, -1))
            penalised.append(np.full(units, spec.l2_biases))
    return tuple(np.concatenate(parts) for parts in (layer, unit, column, penalised))


def _shifted_data_losses(spec: Spec, weights, passed, y: np.ndarray, k: int, unit: np.ndarray,
                         column: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """The data loss at θ + s_c e_c for copies c of layer k's entries (``_entry_table``).
    Only z_k moves: W_k[i, j] + s adds s·ã_{k−1}[:, j] to z_k[:, i], b_k[i] + s adds s; so
    the earlier layers are shared, and the later ones take all copies in one matrix product
    with the unperturbed weights. ``passed``: the unperturbed ``_forward``."""
    inputs, zs, _ = passed
    rows = np.where(column[:, None] >= 0, inputs[k - 1][:, np.maximum(column, 0)].T, 1.0)  # (copies, N)
    z = np.repeat(zs[k - 1][None], shifts.size, axis=0)
    intended = rows * shifts[:, None]
    z[np.arange(shifts.size), :, unit] += intended
    realised = z[np.arange(shifts.size), :, unit] - zs[k - 1][:, unit].T  # exact (Sterbenz)
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(intended != 0, np.abs(realised - intended) / np.abs(intended), 0.0)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow: not finite, not judged
        return _data_loss(spec, _output_from(spec, weights, k, z), y), off.max(axis=1, initial=0.0)


def gradients_with_error(
    spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, entries: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Params, Params]:
    """Central differences ∂L/∂θ and an estimate of their absolute error, both keyed by name.

    L(θ + s e_i) is the data loss with only z_k moved (``_shifted_data_losses``) plus the
    penalty moved by ½λ((θ_i + s)² − θ_i²) = ½λ(2θ_i + s)s on a penalised entry.
    ``entries`` (flat indices into the parameters in spec order) limits the work to those
    entries; the others are NaN in both results. ``progress(done, total)`` is called after
    each block of entries."""
    shapes = param_shapes(spec)
    theta = _flat(spec, params)
    x, y = _rows(spec, X), _rows(spec, Y)
    h = np.cbrt(UNIT_ROUNDOFF) * np.maximum(1.0, np.abs(theta))
    h = (theta + h) - theta  # exactly representable steps
    losses = np.full((len(STEPS), theta.size), np.nan)  # rows: +h, −h, +2h, −2h
    step_off = np.zeros(theta.size)  # each entry's largest relative rounding of its step in z
    chosen = np.arange(theta.size) if entries is None else np.asarray(entries, dtype=np.int64)
    layer, unit, column, penalised = _entry_table(spec)
    weights = _weights(spec, params)
    passed, penalty = _forward(spec, weights, x), _penalty(spec, theta, penalised)
    block, done = _block_size(spec, x.shape[0]), 0
    for k in range(1, spec.depth + 1):
        mine = chosen[layer[chosen] == k]
        for start in range(0, mine.size, block):
            entries_k = mine[start:start + block]
            index = np.tile(entries_k, len(STEPS))  # one copy per entry and step
            shifts = np.multiply.outer(STEPS, h[entries_k]).ravel()
            moved = 0.5 * spec.l2 * np.where(penalised[index], (2 * theta[index] + shifts) * shifts, 0.0)
            data, off = _shifted_data_losses(spec, weights, passed, y, k, unit[index], column[index],
                                             shifts)
            losses[:, entries_k] = (data + penalty + moved).reshape(len(STEPS), -1)
            step_off[entries_k] = off.reshape(len(STEPS), -1).max(axis=0)
            done += entries_k.size
            if progress is not None:
                progress(done, chosen.size)
    with np.errstate(invalid="ignore", over="ignore"):  # inf − inf: NaN, not judged
        d_h = (losses[0] - losses[1]) / (2 * h)
        d_2h = (losses[2] - losses[3]) / (4 * h)
        work = (1 + max(spec.sizes)) * spec.depth * x.shape[0]
        terms = _term_rounding(spec, passed[2])  # each loss term rounds, even where the loss cancels
        rounding = UNIT_ROUNDOFF * work * (np.abs(losses[0]) + np.abs(losses[1]) + terms) / (2 * h)
        stepped = step_off * np.maximum(np.abs(d_h), np.abs(d_2h))  # z ± r·h rounded at a large z
        at_rest = float(np.sum(_data_loss(spec, passed[2], y))) + penalty
        bend_h = (losses[0] - 2 * at_rest + losses[1]) / h  # one-sided slopes' gap: h·L″, or a kink's jump
        bend_2h = (losses[2] - 2 * at_rest + losses[3]) / (2 * h)
        kink = np.abs(bend_2h - 2 * bend_h) / 2  # h³L⁗/2 where smooth; half the jump at a kink
        error = np.abs(d_2h - d_h) / 3 + rounding + stepped + kink
    return _unflatten(d_h, shapes), _unflatten(error, shapes)


def _block_size(spec: Spec, n_samples: int) -> int:
    """Entries per batched pass: as many as keep a block's widest layer, four copies per
    entry of N × width floats, within BLOCK_ELEMENTS."""
    return int(max(1, BLOCK_ELEMENTS // (len(STEPS) * n_samples * (max(spec.sizes) + 1))))


def _term_rounding(spec: Spec, p: np.ndarray) -> float:
    """Σ over loss terms of their rounding in units of u: 1 each, but a loss on probabilities
    sees p (the output) rounded by u·p, so log(1 − p) and log p round by u/min(p, 1 − p)."""
    if not takes_probabilities(spec.loss):
        return float(p.size)
    return float(np.sum(1.0 / np.maximum(np.minimum(p, 1.0 - p), UNIT_ROUNDOFF)))


def _unflatten(flat: np.ndarray, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Split the last axis of ``flat`` into named parameter arrays (keeping leading axes)."""
    out, offset = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        out[name] = flat[..., offset:offset + size].reshape(*flat.shape[:-1], *shape)
        offset += size
    return out


def gradients(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """∂L/∂θ by central differences."""
    return gradients_with_error(spec, params, X, Y)[0]


def sgd_step(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, lr: float) -> Params:
    """θ − η·D_h with the finite-difference gradient."""
    grads = gradients(spec, params, X, Y)
    return {name: np.asarray(params[name], dtype=np.float64) - lr * grads[name] for name in grads}
