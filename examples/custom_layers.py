"""Two hand-written layers for ``bpcheck verify``: RMS normalisation, derived correctly and with
the classic slip (the path through the mean square left out).

    bpcheck verify examples/custom_layers.py:rms_norm         # agrees: exit 0
    bpcheck verify examples/custom_layers.py:rms_norm_slip    # caught: exit 1, diagnosed
"""

import jax.numpy as jnp
import numpy as np
import torch

from bpcheck import UserLayer

EPS = 1e-6


def rms_forward(x, params):
    """y = g * x / sqrt(mean(x^2) + eps), the mean over every feature of a sample."""
    axes = tuple(range(1, x.ndim))
    inv_rms = 1.0 / np.sqrt(np.mean(x * x, axis=axes, keepdims=True) + EPS)
    x_hat = x * inv_rms
    return params["g"] * x_hat, {"x_hat": x_hat, "inv_rms": inv_rms, "g": params["g"], "axes": axes}


def rms_backward(dout, cache):
    """dx = inv_rms * (g*dout - x_hat * mean(g*dout*x_hat)); dg = sum over the batch of dout*x_hat."""
    g_dout = cache["g"] * dout
    mean_term = np.mean(g_dout * cache["x_hat"], axis=cache["axes"], keepdims=True)
    dx = cache["inv_rms"] * (g_dout - cache["x_hat"] * mean_term)
    return dx, {"g": np.sum(dout * cache["x_hat"], axis=0)}


def rms_backward_slip(dout, cache):
    """The slip: inv_rms treated as a constant, so the mean-square term is missing."""
    return cache["inv_rms"] * cache["g"] * dout, {"g": np.sum(dout * cache["x_hat"], axis=0)}


def rms_torch(x, params):
    dims = tuple(range(1, x.dim()))
    return params["g"] * x * torch.rsqrt(x.pow(2).mean(dim=dims, keepdim=True) + EPS)


def rms_jax(x, params):
    axes = tuple(range(1, x.ndim))
    return params["g"] * x / jnp.sqrt(jnp.mean(x * x, axis=axes, keepdims=True) + EPS)


rms_norm = UserLayer("rms_norm", rms_forward, rms_backward, torch=rms_torch, jax=rms_jax,
                     parameters={"g": lambda sample_shape: sample_shape})
rms_norm_slip = UserLayer("rms_norm", rms_forward, rms_backward_slip, torch=rms_torch, jax=rms_jax,
                          parameters={"g": lambda sample_shape: sample_shape})
