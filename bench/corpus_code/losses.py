"""Losses as people write them: MSE with ½ or not, summed or averaged; BCE from probabilities
with clipping; BCE from logits, stabilised; softmax cross-entropy from logits with the max-shift,
on one-hot or label targets, outputs × samples or samples × outputs.

Shapes: outputs × samples (C, N) unless ``layout="samples_by_outputs"`` (N, C); torch's forward
always takes (N, C). Labels index p as p[..., labels, arange(N)] (finite differences add
leading copies).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import expit

from bpcheck import UserLoss
from corpus_code import Entry


def _pair(name: str, form: str, per_sample, gradient, wrong, slip: str, torch_fn, jax_fn,
          **declared) -> Entry:
    correct = UserLoss(name, per_sample, gradient, torch=torch_fn, jax=jax_fn, **declared)
    twin = UserLoss(f"{name}_twin", per_sample, wrong, torch=torch_fn, jax=jax_fn, **declared)
    return Entry(name, "loss", form, correct, twin, slip)


# MSE ------------------------------------------------------------------------------------------
def half_sse(p, y):
    return 0.5 * np.sum((p - y) ** 2, axis=-2)


def mse_outputs(p, y):
    return np.mean((p - y) ** 2, axis=-2)


def mse_all(p, y):  # torch's F.mse_loss: one number, the mean over every entry
    return np.mean((p - y) ** 2)


# BCE ------------------------------------------------------------------------------------------
EPS = 1e-7  # Keras's epsilon


def bce_clipped(p, y):
    p = np.clip(p, EPS, 1 - EPS)
    return -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p), axis=-2)


def bce_clipped_gradient(p, y):
    inside = (p > EPS) & (p < 1 - EPS)  # clip's gradient: 0 where it clips
    p = np.clip(p, EPS, 1 - EPS)
    return (-(y / p) + (1 - y) / (1 - p)) * inside


def bce_clipped_torch(p, y):
    p = p.clamp(EPS, 1 - EPS)
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).sum(dim=1)


def bce_clipped_jax(p, y):
    p = jnp.clip(p, EPS, 1 - EPS)
    return -jnp.sum(y * jnp.log(p) + (1 - y) * jnp.log(1 - p), axis=0)


def bce_textbook(p, y):  # unclipped: p must be a probability (on_probabilities=True)
    return -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p), axis=-2)


def bce_rows_mean(p, y):  # (N, C), one number: the mean over every entry
    p = np.clip(p, EPS, 1 - EPS)
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def bce_rows_mean_gradient(p, y):
    inside = (p > EPS) & (p < 1 - EPS)
    q = np.clip(p, EPS, 1 - EPS)
    return (q - y) / (q * (1 - q)) * inside / p.size


def bce_logits(p, y):
    """max(p, 0) − p·y + log(1 + exp(−|p|)), TensorFlow's stable form."""
    return np.sum(np.maximum(p, 0) - p * y + np.log1p(np.exp(-np.abs(p))), axis=-2)


# softmax cross-entropy from logits ------------------------------------------------------------
def log_softmax_cols(p):
    shifted = p - np.max(p, axis=-2, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-2, keepdims=True))


def softmax_cols(p):
    e = np.exp(p - np.max(p, axis=-2, keepdims=True))
    return e / np.sum(e, axis=-2, keepdims=True)


def ce_soft(p, y):
    return -np.sum(y * log_softmax_cols(p), axis=-2)


def ce_onehot(p, labels):
    one_hot = np.eye(p.shape[-2])[labels].T  # (C, N)
    return -np.sum(one_hot * log_softmax_cols(p), axis=-2)


def ce_onehot_gradient(p, labels):
    return softmax_cols(p) - np.eye(p.shape[-2])[labels].T


def ce_rows_mean(p, labels):  # (N, C) logits, one number: the batch mean
    shifted = p - p.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -np.mean(log_probs[..., np.arange(len(labels)), labels])


def ce_rows_mean_gradient(p, labels, scale=True):
    n = len(labels)
    probs = np.exp(p - p.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    probs[np.arange(n), labels] -= 1
    return probs / n if scale else probs


ENTRIES = [
    _pair("half_sse", "½Σ(p − y)² per sample, ∂ = p − y", half_sse,
          lambda p, y: p - y, lambda p, y: 2 * (p - y), "2(p − y): the ½ kept and the 2 brought down",
          lambda p, y: 0.5 * ((p - y) ** 2).sum(dim=1), lambda p, y: 0.5 * jnp.sum((p - y) ** 2, axis=0)),
    _pair("mse_outputs", "mean over outputs of (p − y)², ∂ = 2(p − y)/C", mse_outputs,
          lambda p, y: 2 * (p - y) / p.shape[-2], lambda p, y: 2 * (p - y), "the 1/C of the mean lost",
          lambda p, y: F.mse_loss(p, y, reduction="none").mean(dim=1),
          lambda p, y: jnp.mean((p - y) ** 2, axis=0)),
    _pair("mse_batch_mean", "one number, F.mse_loss's mean over N·C, ∂ = 2(p − y)/(N·C)", mse_all,
          lambda p, y: 2 * (p - y) / p.size, lambda p, y: 2 * (p - y) / p.shape[-1],
          "divided by N only (the mean over outputs lost)",
          lambda p, y: F.mse_loss(p, y), lambda p, y: jnp.mean((p - y) ** 2), batch="mean"),
    _pair("bce_clipped", "BCE on probabilities clipped to [1e-7, 1 − 1e-7], ∂ = −y/p + (1 − y)/(1 − p)",
          bce_clipped, bce_clipped_gradient, lambda p, y: p - y,
          "p − y (the gradient through the sigmoid) for the gradient in p",
          bce_clipped_torch, bce_clipped_jax, targets="probabilities"),
    _pair("bce_textbook", "BCE unclipped, −Σ y log p + (1 − y) log(1 − p), ∂ = (p − y)/(p(1 − p))",
          bce_textbook, lambda p, y: (p - y) / (p * (1 - p)), lambda p, y: -y / p,
          "−y/p: the (1 − y)/(1 − p) term forgotten",
          lambda p, y: F.binary_cross_entropy(p, y, reduction="none").sum(dim=1),
          lambda p, y: -jnp.sum(y * jnp.log(p) + (1 - y) * jnp.log1p(-p), axis=0),
          targets="probabilities", on_probabilities=True),
    _pair("bce_rows_mean", "BCE, samples × outputs, one number: the mean over N·C, clipped",
          bce_rows_mean, bce_rows_mean_gradient,
          lambda p, y: bce_rows_mean_gradient(p, y) * p.shape[-1], "divided by N only",
          lambda p, y: F.binary_cross_entropy(p.clamp(EPS, 1 - EPS), y),
          lambda p, y: -jnp.mean(y * jnp.log(jnp.clip(p, EPS, 1 - EPS))
                                 + (1 - y) * jnp.log(1 - jnp.clip(p, EPS, 1 - EPS))),
          targets="probabilities", layout="samples_by_outputs", batch="mean"),
    _pair("bce_logits", "BCE from logits, max(p, 0) − py + log1p(exp(−|p|)), ∂ = σ(p) − y", bce_logits,
          lambda p, y: expit(p) - y, lambda p, y: y - expit(p), "y − σ(p): the sign",
          lambda p, y: F.binary_cross_entropy_with_logits(p, y, reduction="none").sum(dim=1),
          lambda p, y: jnp.sum(jnp.maximum(p, 0) - p * y + jnp.log1p(jnp.exp(-jnp.abs(p))), axis=0),
          targets="probabilities"),
    _pair("ce_soft_targets", "−Σ y·log_softmax(p) with the max-shift, ∂ = softmax(p)·Σy − y", ce_soft,
          lambda p, y: softmax_cols(p) * y.sum(axis=-2, keepdims=True) - y,
          lambda p, y: softmax_cols(p) - y, "softmax(p) − y: assumes Σy = 1",
          lambda p, y: -(y * F.log_softmax(p, dim=1)).sum(dim=1),
          lambda p, y: -jnp.sum(y * jax.nn.log_softmax(p, axis=0), axis=0), targets="probabilities"),
    _pair("ce_onehot", "labels turned one-hot with np.eye, ∂ = softmax(p) − onehot", ce_onehot,
          ce_onehot_gradient, lambda p, y: softmax_cols(p) - np.eye(p.shape[-2])[y],
          "the one-hot matrix not transposed (right only where the classes equal the samples)",
          lambda p, y: F.cross_entropy(p, y, reduction="none"),
          lambda p, y: -jnp.sum(jax.nn.one_hot(y, p.shape[0]).T * jax.nn.log_softmax(p, axis=0), axis=0),
          targets="labels"),
    _pair("ce_rows_mean", "cs231n: (N, C) logits, labels, one number: the batch mean", ce_rows_mean,
          ce_rows_mean_gradient, lambda p, y: ce_rows_mean_gradient(p, y, scale=False),
          "dscores not divided by N",
          lambda p, y: F.cross_entropy(p, y),
          lambda p, y: -jnp.mean(jax.nn.log_softmax(p, axis=1)[jnp.arange(y.shape[0]), y]),
          targets="labels", layout="samples_by_outputs", batch="mean"),
]
