"""Layers in the cs231n convention — ``forward(x, params) → (out, cache)``, ``backward(dout,
cache) → (dx, grads)`` — as students write them: batch norm (features and spatial), layer norm,
RMS norm over a sequence's features, and single-head self-attention. Recurrent cells are in
``recurrent.py``."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import torch

from bpcheck import UserLayer
from corpus_code import Entry

EPS = 1e-5


def _pair(name: str, form: str, forward, backward, wrong, slip: str, **declared) -> Entry:
    return Entry(name, "layer", form, UserLayer(name, forward, backward, **declared),
                 UserLayer(f"{name}_twin", forward, wrong, **declared), slip)


# batch norm over features (N, F): cs231n's batchnorm_backward_alt --------------------------------
def bn_forward(x, params):
    mu = x.mean(axis=0)
    xc = x - mu
    var = (xc ** 2).mean(axis=0)
    std = np.sqrt(var + EPS)
    xhat = xc / std
    return params["gamma"] * xhat + params["beta"], (xhat, std, params["gamma"])


def bn_backward(dout, cache):
    xhat, std, gamma = cache
    N = dout.shape[0]
    dxhat = dout * gamma
    dx = (N * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0)) / (N * std)
    return dx, {"gamma": (dout * xhat).sum(axis=0), "beta": dout.sum(axis=0)}


def bn_backward_wrong(dout, cache):  # the variance treated as a constant
    xhat, std, gamma = cache
    dxhat = dout * gamma
    return (dxhat - dxhat.mean(axis=0)) / std, {"gamma": (dout * xhat).sum(axis=0), "beta": dout.sum(axis=0)}


def bn_torch(x, p):
    mu = x.mean(dim=0)
    var = x.var(dim=0, unbiased=False)
    return p["gamma"] * (x - mu) / torch.sqrt(var + EPS) + p["beta"]


def bn_jax(x, p):
    return p["gamma"] * (x - x.mean(axis=0)) / jnp.sqrt(x.var(axis=0) + EPS) + p["beta"]


# spatial batch norm (N, C, H, W), the staged backward -------------------------------------------
AXES = (0, 2, 3)


def sbn_forward(x, params):
    g, b = params["gamma"][None, :, None, None], params["beta"][None, :, None, None]
    mu = x.mean(axis=AXES, keepdims=True)
    xc = x - mu
    var = (xc ** 2).mean(axis=AXES, keepdims=True)
    std = np.sqrt(var + EPS)
    xhat = xc / std
    return g * xhat + b, (xc, var, std, xhat, g)


def sbn_backward(dout, cache, unbiased=False):
    xc, var, std, xhat, g = cache
    m = dout.shape[0] * dout.shape[2] * dout.shape[3]
    dxhat = dout * g
    dvar = (dxhat * xc * -0.5 * (var + EPS) ** -1.5).sum(axis=AXES, keepdims=True)
    dmu = (-dxhat / std).sum(axis=AXES, keepdims=True) + dvar * (-2 * xc).mean(axis=AXES, keepdims=True)
    dx = dxhat / std + dvar * 2 * xc / (m - 1 if unbiased else m) + dmu / m
    return dx, {"gamma": (dout * xhat).sum(axis=AXES), "beta": dout.sum(axis=AXES)}


def sbn_torch(x, p):  # F.batch_norm(training=True) refuses one value per channel: the formula
    mu = x.mean(dim=AXES, keepdim=True)
    var = x.var(dim=AXES, unbiased=False, keepdim=True)
    return p["gamma"][None, :, None, None] * (x - mu) / torch.sqrt(var + EPS) + p["beta"][None, :, None, None]


def sbn_jax(x, p):
    mu, var = x.mean(axis=AXES, keepdims=True), x.var(axis=AXES, keepdims=True)
    return p["gamma"][None, :, None, None] * (x - mu) / jnp.sqrt(var + EPS) + p["beta"][None, :, None, None]


# layer norm over every feature of a sample, γ and β of the sample's shape -----------------------
def ln_forward(x, params):
    axes = tuple(range(1, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    std = np.sqrt(((x - mu) ** 2).mean(axis=axes, keepdims=True) + EPS)
    xhat = (x - mu) / std
    return params["gamma"] * xhat + params["beta"], (xhat, std, params["gamma"], axes)


def ln_backward(dout, cache, whole=True):
    xhat, std, gamma, axes = cache
    d = xhat[0].size
    dxhat = dout * gamma
    last = xhat * (dxhat * xhat).sum(axis=axes, keepdims=True) if whole else 0
    dx = (d * dxhat - dxhat.sum(axis=axes, keepdims=True) - last) / (d * std)
    return dx, {"gamma": (dout * xhat).sum(axis=0), "beta": dout.sum(axis=0)}


def ln_torch(x, p):
    return torch.nn.functional.layer_norm(x, tuple(x.shape[1:]), p["gamma"], p["beta"], eps=EPS)


def ln_jax(x, p):
    axes = tuple(range(1, x.ndim))
    mu, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    return p["gamma"] * (x - mu) / jnp.sqrt(var + EPS) + p["beta"]


# RMS norm over a sequence's features (N, T, D), LLM style ---------------------------------------
def rms_forward(x, params):
    r = 1 / np.sqrt((x * x).mean(axis=-1, keepdims=True) + EPS)
    return x * r * params["weight"], (x, r, params["weight"])


def rms_backward(dout, cache, summed=False):
    x, r, w = cache
    g = dout * w
    inner = (g * x).sum(axis=-1, keepdims=True) if summed else (g * x).mean(axis=-1, keepdims=True)
    return r * g - x * r ** 3 * inner, {"weight": (dout * x * r).sum(axis=(0, 1))}


# single-head self-attention (N, T, D), softmax(QKᵀ/√D)V -------------------------------------------
def attn_forward(x, params):
    Wq, Wk, Wv = params["Wq"], params["Wk"], params["Wv"]
    q, k, v = x @ Wq, x @ Wk, x @ Wv
    scale = 1 / math.sqrt(x.shape[-1])  # a float: NumPy's float64 scalar would upcast float32
    s = q @ k.transpose(0, 2, 1) * scale
    s = s - s.max(axis=-1, keepdims=True)
    p = np.exp(s)
    p = p / p.sum(axis=-1, keepdims=True)
    return p @ v, (x, q, k, v, p, scale, Wq, Wk, Wv)


def attn_backward(dout, cache, jacobian=True):
    x, q, k, v, p, scale, Wq, Wk, Wv = cache
    dp = dout @ v.transpose(0, 2, 1)
    dv = p.transpose(0, 2, 1) @ dout
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True)) if jacobian else p * dp
    dq = ds @ k * scale
    dk = ds.transpose(0, 2, 1) @ q * scale
    xt = x.transpose(0, 2, 1)
    grads = {"Wq": (xt @ dq).sum(axis=0), "Wk": (xt @ dk).sum(axis=0), "Wv": (xt @ dv).sum(axis=0)}
    return dq @ Wq.T + dk @ Wk.T + dv @ Wv.T, grads


def attn_torch(x, p):
    q, k, v = x @ p["Wq"], x @ p["Wk"], x @ p["Wv"]
    return torch.softmax(q @ k.transpose(1, 2) / x.shape[-1] ** 0.5, dim=-1) @ v


def attn_jax(x, p):
    q, k, v = x @ p["Wq"], x @ p["Wk"], x @ p["Wv"]
    return jax.nn.softmax(q @ k.transpose(0, 2, 1) / x.shape[-1] ** 0.5, axis=-1) @ v


def _square(shape):
    return (shape[-1], shape[-1])


def _features(shape):
    return shape[:1]


ENTRIES = [
    _pair("bn_features", "cs231n batchnorm_backward_alt on (N, F)", bn_forward, bn_backward,
          bn_backward_wrong, "the variance treated as a constant (its path lost)",
          torch=bn_torch, jax=bn_jax, rank=1,
          parameters={"gamma": lambda s: s, "beta": lambda s: s}),
    _pair("bn_spatial", "staged dvar, dmu backward on (N, C, H, W)", sbn_forward, sbn_backward,
          lambda dout, cache: sbn_backward(dout, cache, unbiased=True), "dvar's 2xc/m with m − 1",
          torch=sbn_torch, jax=sbn_jax, rank=3,
          parameters={"gamma": _features, "beta": _features}),
    _pair("ln_features", "over every feature of a sample, γ and β of its shape; F.layer_norm",
          ln_forward, ln_backward, lambda dout, cache: ln_backward(dout, cache, whole=False),
          "the x̂·Σ(dx̂·x̂) term lost", torch=ln_torch, jax=ln_jax,
          parameters={"gamma": lambda s: s, "beta": lambda s: s}),
    _pair("rms_norm_seq", "x·rsqrt(mean(x²) + ε)·w over a sequence's features (T, D)",
          rms_forward, rms_backward, lambda dout, cache: rms_backward(dout, cache, summed=True),
          "Σ for mean in the x·r³ term",
          torch=lambda x, p: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * p["weight"],
          jax=lambda x, p: x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + EPS) * p["weight"],
          rank=2, parameters={"weight": lambda s: s[1:]}),
    _pair("self_attention", "softmax(QKᵀ/√D)V over a sequence, Wq, Wk, Wv (D, D)",
          attn_forward, attn_backward, lambda dout, cache: attn_backward(dout, cache, jacobian=False),
          "softmax's Jacobian without −P·Σ(P·dP)", torch=attn_torch, jax=attn_jax, rank=2,
          parameters={"Wq": _square, "Wk": _square, "Wv": _square}),
]
