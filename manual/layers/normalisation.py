r"""Batch normalisation (training mode) and layer normalisation.

Both standardise x over a set of axes A (M values per statistic) and rescale per feature:

.. math::
    μ = \frac1M Σ_A x,\quad v = \frac1M Σ_A (x − μ)^2,\quad σ = \sqrt{v + ε},\quad
    x̂ = (x − μ)/σ,\quad out = γ x̂ + β.

* ``batch_norm``: A = the batch (and, for (N, C, H, W) input, the spatial axes): one μ, v per
  channel, M = N (or N·H·W); γ, β of shape (C,). The step also updates the running statistics
  r_μ ← (1 − m) r_μ + m μ and r_v ← (1 − m) r_v + m · v·M/(M − 1) (the unbiased variance, as
  torch keeps it), so M ≥ 2 is needed: one value per channel has no variance to estimate.
* ``layer_norm``: A = every axis but the batch: one μ, v per sample, M = the sample's size;
  γ, β of the sample's shape.

Backward (the derivation everyone gets wrong by stopping at the first term): with
g = dout·γ = ∂L/∂x̂, x̂ depends on x directly and through μ and v, and ∂v/∂x = 2(x − μ)/M,
∂μ/∂x = 1/M, so

.. math::
    ∂L/∂x = \frac{1}{Mσ}\Big(M g − Σ_A g − x̂ Σ_A g x̂\Big),\qquad
    ∂L/∂γ = Σ_{B} dout ⊙ x̂,\qquad ∂L/∂β = Σ_{B} dout,

where B are the axes γ is shared over (the complement of γ's own axes). The two sums are the
mean and the variance terms; without them the gradient is g/σ.
"""

from __future__ import annotations

import numpy as np

from manual.layer_kinds import Layer
from manual.spec import Array


def batch_axes(x: Array) -> tuple[int, ...]:
    """The axes batch norm's statistics run over: (0,) or (0, 2, 3)."""
    return (0,) if x.ndim == 2 else (0, 2, 3)


def sample_axes(x: Array) -> tuple[int, ...]:
    """The axes layer norm's statistics run over: every axis but the batch."""
    return tuple(range(1, x.ndim))


def per_channel(vector: Array, x: Array) -> Array:
    """γ or β of shape (C,) broadcast against x (N, C) or (N, C, H, W)."""
    return vector.reshape((1, -1) + (1,) * (x.ndim - 2))


def standardise(x: Array, axes: tuple[int, ...], eps: float) -> tuple[Array, Array, Array, Array]:
    """(x̂, μ, v, σ) over ``axes``, two-pass: v = mean((x − μ)²), never mean(x²) − μ²."""
    mu = x.mean(axis=axes, keepdims=True)
    centred = x - mu
    var = np.mean(centred * centred, axis=axes, keepdims=True)
    sigma = np.sqrt(var + x.dtype.type(eps))
    return centred / sigma, mu, var, sigma


def _standardise_backward(g: Array, x_hat: Array, sigma: Array, axes: tuple[int, ...]) -> Array:
    """∂L/∂x = (M g − Σ_A g − x̂ Σ_A g x̂)/(M σ) from g = ∂L/∂x̂."""
    m = int(np.prod([g.shape[axis] for axis in axes]))
    return (m * g - g.sum(axis=axes, keepdims=True)
            - x_hat * (g * x_hat).sum(axis=axes, keepdims=True)) / (m * sigma)


def batch_norm_forward(x: Array, params: dict[str, Array], layer: Layer) -> tuple[Array, tuple]:
    """out = γ x̂ + β with batch statistics; the cache carries μ and v for the running update."""
    axes = batch_axes(x)
    x_hat, mu, var, sigma = standardise(x, axes, layer.eps)
    out = per_channel(params["gamma"], x) * x_hat + per_channel(params["beta"], x)
    return out, (x_hat, sigma, params["gamma"], axes, mu, var)


def batch_norm_backward(dout: Array, cache: tuple) -> tuple[Array, dict[str, Array]]:
    """∂L/∂x, ∂L/∂γ = Σ dout x̂, ∂L/∂β = Σ dout (sums over the batch, spatial axes too)."""
    x_hat, sigma, gamma, axes = cache[:4]
    dx = _standardise_backward(dout * per_channel(gamma, dout), x_hat, sigma, axes)
    return dx, {"gamma": (dout * x_hat).sum(axis=axes), "beta": dout.sum(axis=axes)}


def running_statistics(cache: tuple, running: dict[str, Array], layer: Layer) -> dict[str, Array]:
    """r_μ ← (1 − m) r_μ + m μ, r_v ← (1 − m) r_v + m v M/(M − 1) (new arrays)."""
    x_hat, _, _, axes, mu, var = cache
    count = int(np.prod([x_hat.shape[axis] for axis in axes]))
    m = x_hat.dtype.type(layer.momentum)
    unbiased = var.reshape(-1) * x_hat.dtype.type(count / (count - 1))
    return {"running_mean": (1 - m) * running["running_mean"] + m * mu.reshape(-1),
            "running_var": (1 - m) * running["running_var"] + m * unbiased}


def batch_norm_eval_forward(x: Array, params: dict[str, Array], layer: Layer,
                            running: dict[str, Array]) -> Array:
    """Inference: out = γ (x − r_μ)/√(r_v + ε) + β with the running statistics (no cache: nothing
    is differentiated at inference)."""
    mean, var = (per_channel(running[name], x) for name in ("running_mean", "running_var"))
    x_hat = (x - mean) / np.sqrt(var + x.dtype.type(layer.eps))
    return per_channel(params["gamma"], x) * x_hat + per_channel(params["beta"], x)


def layer_norm_forward(x: Array, params: dict[str, Array], layer: Layer) -> tuple[Array, tuple]:
    """out = γ x̂ + β with per-sample statistics; γ, β of one sample's shape."""
    axes = sample_axes(x)
    x_hat, _, _, sigma = standardise(x, axes, layer.eps)
    return params["gamma"] * x_hat + params["beta"], (x_hat, sigma, params["gamma"], axes)


def layer_norm_backward(dout: Array, cache: tuple) -> tuple[Array, dict[str, Array]]:
    """∂L/∂x, ∂L/∂γ = Σ_n dout x̂, ∂L/∂β = Σ_n dout (sums over the batch only)."""
    x_hat, sigma, gamma, axes = cache
    dx = _standardise_backward(dout * gamma, x_hat, sigma, axes)
    return dx, {"gamma": (dout * x_hat).sum(axis=0), "beta": dout.sum(axis=0)}
