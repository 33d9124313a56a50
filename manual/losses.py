"""Losses: each per-sample value ℓ(p, y) sits beside its hand-derived gradient ∂ℓ/∂p.

Arrays are laid out outputs × samples: ``p`` and ``y`` are ``(C, N)``. The total loss
reduces the per-sample losses over the batch: ``sum`` gives L = Σ_n ℓ_n and ``mean`` gives
L = (1/N) Σ_n ℓ_n, so ∂L/∂p carries the same factor 1 or 1/N.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Loss:
    """A loss: ``per_sample(p, y)`` is ℓ_n for each column, ``gradient(p, y)`` is ∂ℓ_n/∂p."""

    name: str
    per_sample: Callable[[np.ndarray, np.ndarray], np.ndarray]
    gradient: Callable[[np.ndarray, np.ndarray], np.ndarray]


LOSSES: dict[str, Loss] = {}


def register(loss: Loss) -> Loss:
    """Add a loss to the registry every rule, witness and test iterates."""
    LOSSES[loss.name] = loss
    return loss


def half_sse(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""ℓ_n = ½ Σ_c (p_{cn} − y_{cn})² — the seed's L = ½(σ_o − ŷ)², summed over outputs."""
    return 0.5 * np.sum((p - y) ** 2, axis=0)


def half_sse_gradient(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""∂ℓ_n/∂p_{cn} = p_{cn} − y_{cn}."""
    return p - y


register(Loss("half-sse", half_sse, half_sse_gradient))


def reduce(per_sample: np.ndarray, reduction: str) -> np.ndarray:
    r"""L = Σ_n ℓ_n (``sum``) or L = (1/N) Σ_n ℓ_n (``mean``)."""
    total = np.sum(per_sample)
    return total / per_sample.shape[0] if reduction == "mean" else total


def reduction_scale(n_samples: int, reduction: str) -> float:
    r"""∂L/∂ℓ_n: 1 for ``sum``, 1/N for ``mean``."""
    return 1.0 / n_samples if reduction == "mean" else 1.0
