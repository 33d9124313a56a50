"""Losses: each per-sample value ℓ(p, y) sits beside its hand-derived gradient ∂ℓ/∂p.

Predictions ``p`` are outputs × samples, (C, N); targets ``y`` are (C, N) too, or (N,) class
labels. The total reduces the per-sample losses over the batch — ``sum``: L = Σ_n ℓ_n,
``mean``: L = (1/N) Σ_n ℓ_n — and may add the penalty λ/2 Σ_k ‖W_k‖² (weights only).
Logit losses use log-sum-exp and log1p(e^{−|z|}), so nothing overflows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from manual.activations import sigmoid
from manual.spec import Array

#: BCE's named convention where a probability nears 0 or 1: each log is clamped at −100 (as in
#: torch's loss value). The gradient is the exact derivative of that clamped loss; torch's own
#: backward instead floors p(1 − p) at 1e−12, which is not (see ``bce_gradient``).
LOG_FLOOR = -100.0


@dataclass(frozen=True)
class Loss:
    """``per_sample(p, y)`` is ℓ_n for each sample, ``gradient(p, y)`` is ∂ℓ_n/∂p (like p)."""

    name: str
    per_sample: Callable[[Array, Array], Array]
    gradient: Callable[[Array, Array], Array]


LOSSES: dict[str, Loss] = {}


def register(loss: Loss) -> Loss:
    """Add a loss to the registry every rule, witness and test iterates."""
    LOSSES[loss.name] = loss
    return loss


def half_sse(p: Array, y: Array) -> Array:
    r"""ℓ_n = ½ Σ_c (p_{cn} − y_{cn})² — the seed's L = ½(σ_o − ŷ)², summed over outputs."""
    return 0.5 * np.sum((p - y) ** 2, axis=-2)


def half_sse_gradient(p: Array, y: Array) -> Array:
    r"""∂ℓ_n/∂p_{cn} = p_{cn} − y_{cn}."""
    return p - y


register(Loss("half-sse", half_sse, half_sse_gradient))


def mse(p: Array, y: Array) -> Array:
    r"""ℓ_n = (1/C) Σ_c (p_{cn} − y_{cn})² (so ``mean`` is torch's mse_loss over all entries)."""
    return np.mean((p - y) ** 2, axis=-2)


def mse_gradient(p: Array, y: Array) -> Array:
    r"""∂ℓ_n/∂p_{cn} = 2 (p_{cn} − y_{cn}) / C."""
    return 2.0 * (p - y) / p.shape[-2]


register(Loss("mse", mse, mse_gradient))


def bce(p: Array, y: Array) -> Array:
    r"""ℓ_n = −Σ_c [y log p + (1 − y) log(1 − p)], each log clamped at −100 (p ∈ [0, 1])."""
    return -np.sum(y * _clamped_log(p) + (1.0 - y) * _clamped_log(1.0 - p), axis=-2)


def _clamped_log(p: Array) -> Array:
    """max(log p, −100) in p's own dtype (log 0 = −∞ → −100, without a warning)."""
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(p), LOG_FLOOR)


def _inverse_where_unclamped(p: Array) -> Array:
    """1/p where log p > −100, else 0: the derivative of max(log p, −100)."""
    with np.errstate(divide="ignore"):
        live = np.log(p) > LOG_FLOOR
    return np.where(live, 1.0 / np.where(live, p, 1.0), 0.0).astype(p.dtype)


def bce_gradient(p: Array, y: Array) -> Array:
    r"""∂ℓ_n/∂p = −y/p + (1 − y)/(1 − p), each term 0 where its log is clamped (log p ≤ −100 or
    log(1 − p) ≤ −100): the exact derivative of ``bce`` as it is reported, = (p − y)/(p(1 − p))
    where no log is clamped."""
    return (1.0 - y) * _inverse_where_unclamped(1.0 - p) - y * _inverse_where_unclamped(p)


register(Loss("bce", bce, bce_gradient))


def bce_logits(z: Array, y: Array) -> Array:
    r"""ℓ_n = Σ_c [max(z, 0) − z·y + log1p(e^{−|z|})] = −Σ_c [y log σ(z) + (1 − y) log σ(−z)]."""
    return np.sum(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))), axis=-2)


def bce_logits_gradient(z: Array, y: Array) -> Array:
    r"""∂ℓ_n/∂z = σ(z) − y."""
    return sigmoid(z) - y


register(Loss("bce-logits", bce_logits, bce_logits_gradient))


def log_softmax(z: Array) -> Array:
    r"""log softmax(z)_c = z_c − m − log Σ_k e^{z_k − m}, m = max_k z_k (over outputs, axis −2)."""
    shifted = z - np.max(z, axis=-2, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-2, keepdims=True))


def softmax_ce(z: Array, y: Array) -> Array:
    r"""ℓ_n = −Σ_c y_{cn} log softmax(z)_{cn} (one-hot or soft targets y)."""
    return -np.sum(y * log_softmax(z), axis=-2)


def softmax_ce_gradient(z: Array, y: Array) -> Array:
    r"""∂ℓ_n/∂z_c = softmax(z)_c Σ_k y_k − y_c (= softmax(z) − y when Σ_k y_k = 1)."""
    return np.exp(log_softmax(z)) * np.sum(y, axis=-2, keepdims=True) - y


register(Loss("softmax-ce", softmax_ce, softmax_ce_gradient))


def one_hot(labels: Array, classes: int, dtype: np.dtype) -> Array:
    """(N,) labels → (C, N) one-hot columns."""
    return (np.arange(classes)[:, None] == labels[None, :]).astype(dtype)


def softmax_ce_labels(z: Array, labels: Array) -> Array:
    r"""ℓ_n = −log softmax(z)_{y_n, n}, y_n ∈ {0, …, C−1} a class label."""
    return -np.take_along_axis(log_softmax(z), labels[None, :], axis=0)[0]


def softmax_ce_labels_gradient(z: Array, labels: Array) -> Array:
    r"""∂ℓ_n/∂z_c = softmax(z)_c − [c = y_n]."""
    return np.exp(log_softmax(z)) - one_hot(labels, z.shape[0], z.dtype)


register(Loss("softmax-ce-labels", softmax_ce_labels, softmax_ce_labels_gradient))


def reduce(per_sample: Array, reduction: str) -> Array:
    r"""L = Σ_n ℓ_n (``sum``) or L = (1/N) Σ_n ℓ_n (``mean``)."""
    total = np.sum(per_sample)
    return total / per_sample.shape[0] if reduction == "mean" else total


def reduction_scale(n_samples: int, reduction: str) -> float:
    r"""∂L/∂ℓ_n: 1 for ``sum``, 1/N for ``mean``."""
    return 1.0 / n_samples if reduction == "mean" else 1.0


def l2_penalty(weights: list[Array], l2: float) -> float:
    r"""λ/2 Σ_k ‖W_k‖²_F over the weight blocks given (bias columns excluded by the caller)."""
    if not l2:  # no penalty, however large the weights (0 · inf would be NaN)
        return 0.0
    return 0.5 * l2 * sum(float(np.sum(w * w)) for w in weights)
