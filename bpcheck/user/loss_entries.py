"""A user loss's callables adapted to what each table of the registry expects.

bpcheck's own losses take outputs × samples arrays and return one value per sample (manual and
jax), samples × outputs tensors (torch), and (…, N, C) batches of copies (finite differences).
A user loss may be written for samples × outputs arrays (``layout``) and may return one scalar
for the whole batch (``batch``: its sum or mean over the samples, with the gradient of that
scalar). A batch scalar is turned into per-sample values by calling it on one sample at a time
(for one sample a sum and a mean are the same value); its gradient is taken on the whole batch
and multiplied by N for a mean, so the batch's own 1/N is checked too.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
import torch

from manual.losses import Loss


def _turned(a: np.ndarray) -> np.ndarray:
    """The last two axes swapped; class labels (1-d) as they are."""
    return a if np.ndim(a) == 1 else np.swapaxes(a, -1, -2)


def _one(y, n: int):
    """Sample n of targets: a column of outputs × samples values, or one label."""
    return y[n:n + 1] if np.ndim(y) == 1 else y[:, n:n + 1]


def loss_entries(rule) -> dict[str, object]:
    """``record``, ``manual``, ``torch``, ``jax`` and ``numeric`` entries of a (guarded)
    ``UserLoss``."""
    if rule.layout == "samples_by_outputs":
        value = lambda p, y: rule.per_sample(_turned(p), _turned(y))  # noqa: E731
        gradient = lambda p, y: _turned(np.asarray(rule.gradient(_turned(p), _turned(y))))  # noqa: E731
        jax_fn = lambda p, y: rule.jax(p.T, y.T if y.ndim > 1 else y)  # noqa: E731
    else:
        value, gradient, jax_fn = rule.per_sample, rule.gradient, rule.jax
    torch_fn = rule.torch
    if rule.batch is not None:
        value, gradient, torch_fn, jax_fn = _per_sample(value, gradient, torch_fn, jax_fn, rule.batch)
    return {"record": rule.record(), "manual": Loss(rule.name, value, gradient), "torch": torch_fn,
            "jax": lambda p, y, mask: jax_fn(p, y),
            "numeric": lambda p, y: value(_turned(p), _turned(y))}


def _per_sample(value: Callable, gradient: Callable, torch_fn: Callable, jax_fn: Callable,
                batch: str) -> tuple[Callable, Callable, Callable, Callable]:
    """Per-sample forms of batch-scalar callables (the module docstring)."""

    def values(p: np.ndarray, y) -> np.ndarray:  # p (…, C, N): leading copies one by one
        flat = p.reshape(-1, *p.shape[-2:])
        out = np.array([[float(value(copy[:, n:n + 1], _one(y, n))) for n in range(p.shape[-1])]
                        for copy in flat])
        return out.reshape(*p.shape[:-2], p.shape[-1])

    def gradients(p: np.ndarray, y) -> np.ndarray:
        scale = p.shape[-1] if batch == "mean" else 1
        return np.asarray(gradient(p, y)) * scale

    def torch_values(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # p (N, C)
        return torch.stack([torch_fn(p[n:n + 1], y[n:n + 1]).reshape(()) for n in range(p.shape[0])])

    def jax_values(p, y):  # p (C, N)
        return jnp.stack([jnp.reshape(jax_fn(p[:, n:n + 1], _one(y, n)), ()) for n in range(p.shape[1])])

    return values, gradients, torch_values, jax_values
