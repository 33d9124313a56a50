r"""Embedding, and the loss at every time step with a mask for padded positions.

* ``embedding``: integer tokens x (N, T) with values in [0, V), W (V, D) (torch's layout):
  out[n, t] = W[x[n, t]] (N, T, D). ∂L/∂W[v] = Σ over every (n, t) with x[n, t] = v of
  dout[n, t]: a token that appears several times *accumulates* its gradients. Tokens have no
  gradient.
* per-time-step loss on outputs (N, T, C), targets per step (labels (N, T) or values
  (N, T, C)) and a 0/1 mask m (N, T) of real (1) and padded (0) positions:
  L = Σ_{n,t} m_{nt} ℓ(out_{nt}, y_{nt}) / M with M = Σ m (``mean``, torch's convention for
  ignored targets) or 1 (``sum``); ∂L/∂out_{nt} = (m_{nt}/M) ∂ℓ/∂out_{nt}.
  (The dense layer acts at every step by itself: ``manual.layers.simple``.)
"""

from __future__ import annotations

import numpy as np

from manual.layer_kinds import Layer
from manual.spec import Array

PADDING = "padding"  # the masks' key of the per-time-step loss's mask


def embedding_forward(x: Array, params: dict[str, Array], layer: Layer) -> tuple[Array, tuple]:
    """out[n, t] = W[x[n, t]]."""
    return params["W"][x], (x, params["W"])


def embedding_backward(dout: Array, cache: tuple) -> tuple[None, dict[str, Array]]:
    """∂L/∂W[v] = Σ_{x[n,t] = v} dout[n, t] (``np.add.at`` accumulates repeated indices);
    tokens get no gradient (None)."""
    x, W = cache
    dW = np.zeros_like(W)
    np.add.at(dW, x.reshape(-1), dout.reshape(-1, W.shape[1]))
    return None, {"W": dW}


def _steps(out: Array, y: Array, mask: Array, reduction: str) -> tuple[Array, Array, Array, Array]:
    """(outputs and targets as columns, one per step, each step's weight 1 or 0 (padding), and
    the divisor: the real steps' count for "mean", else 1)."""
    n, steps, classes = out.shape
    flat_out = out.reshape(n * steps, classes).T
    flat_y = y.reshape(n * steps) if y.ndim == 2 else y.reshape(n * steps, classes).T
    weight = mask.reshape(n * steps).astype(out.dtype)
    return flat_out, flat_y, weight, weight.sum() if reduction == "mean" else out.dtype.type(1)


def _value(record, flat_out: Array, flat_y: Array, weight: Array, total: Array) -> float:
    """Σ_real ℓ / total, from ``_steps``: padding's ℓ (even inf) counts nowhere."""
    return float(np.sum(np.where(weight > 0, record.per_sample(flat_out, flat_y), 0)) / total)


def masked_loss_value(record, out: Array, y: Array, mask: Array, reduction: str) -> float:
    """L of ``record`` (a ``manual.losses`` record: columns are samples) at every step, padded
    steps left out: Σ_real ℓ / (the real steps' count, for "mean")."""
    return _value(record, *_steps(out, y, mask, reduction))


def masked_loss(record, out: Array, y: Array, mask: Array, reduction: str) -> tuple[float, Array]:
    """(L, ∂L/∂out) of ``record`` at every step, padded steps left out (``masked_loss_value``):
    ∂L/∂out = ∂ℓ/∂out · weight / total."""
    steps = flat_out, flat_y, weight, total = _steps(out, y, mask, reduction)
    dout = (record.gradient(flat_out, flat_y) * (weight / total)).T.reshape(out.shape)
    return _value(record, *steps), dout
