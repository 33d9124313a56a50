"""Layers as other people write them (cs231n style), for ``bpcheck verify``: an LSTM over
(T, D) sequences and batch norm over (N, C) or NCHW (through NHWC), each right and with a
classic slip.

    bpcheck verify tests/data/user_layers.py:lstm                 # agrees
    bpcheck verify tests/data/user_layers.py:lstm_slip            # WRONG (the cell state's carry)
    bpcheck verify tests/data/user_layers.py:batchnorm            # agrees
    bpcheck verify tests/data/user_layers.py:batchnorm_slip       # WRONG (the mean term)
    bpcheck verify tests/data/user_layers.py:spatial_batchnorm    # agrees
"""

import jax
import jax.numpy as jnp
import numpy as np
import torch

from bpcheck import UserLayer

HIDDEN = 3  # the LSTM's hidden size
BN_EPS = 1e-5


def sigmoid(x):
    """A numerically stable sigmoid (cs231n's)."""
    pos_mask = x >= 0
    neg_mask = x < 0
    z = np.zeros_like(x)
    z[pos_mask] = np.exp(-x[pos_mask])
    z[neg_mask] = np.exp(x[neg_mask])
    top = np.ones_like(x)
    top[neg_mask] = z[neg_mask]
    return top / (1 + z)


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    H = prev_h.shape[1]
    a = x.dot(Wx) + prev_h.dot(Wh) + b
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H:2 * H])
    o = sigmoid(a[:, 2 * H:3 * H])
    g = np.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    cache = (x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c)
    return next_h, next_c, cache


def lstm_step_backward(dnext_h, dnext_c, cache, carry=True):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c = cache
    tanh_c = np.tanh(next_c)
    do = dnext_h * tanh_c
    dc = dnext_h * o * (1 - tanh_c ** 2)
    if carry:  # the slip leaves out the cell state's gradient from the step after
        dc = dc + dnext_c
    di = dc * g
    df = dc * prev_c
    dg = dc * i
    dprev_c = dc * f
    da = np.hstack((di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g ** 2)))
    dx = da.dot(Wx.T)
    dprev_h = da.dot(Wh.T)
    dWx = x.T.dot(da)
    dWh = prev_h.T.dot(da)
    db = np.sum(da, axis=0)
    return dx, dprev_h, dprev_c, dWx, dWh, db


def lstm_forward(x, params):
    Wx, Wh, b = params["Wx"], params["Wh"], params["b"]
    N, T, _ = x.shape
    H = Wh.shape[0]
    h = np.zeros((N, T, H), dtype=x.dtype)
    prev_h = np.zeros((N, H), dtype=x.dtype)
    prev_c = np.zeros((N, H), dtype=x.dtype)
    caches = []
    for t in range(T):
        prev_h, prev_c, cache = lstm_step_forward(x[:, t, :], prev_h, prev_c, Wx, Wh, b)
        h[:, t, :] = prev_h
        caches.append(cache)
    return h, caches


def _lstm_backward(dh, caches, carry):
    N, T, H = dh.shape
    x0, _, _, Wx, Wh = caches[0][:5]
    dx = np.zeros((N, T, x0.shape[1]), dtype=dh.dtype)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(4 * H, dtype=dh.dtype)
    dprev_h = np.zeros((N, H), dtype=dh.dtype)
    dprev_c = np.zeros((N, H), dtype=dh.dtype)
    for t in reversed(range(T)):
        dx_t, dprev_h, dprev_c, dWx_t, dWh_t, db_t = lstm_step_backward(
            dh[:, t, :] + dprev_h, dprev_c, caches[t], carry)
        dx[:, t, :] = dx_t
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, {"Wx": dWx, "Wh": dWh, "b": db}


def lstm_backward(dh, caches):
    return _lstm_backward(dh, caches, carry=True)


def lstm_backward_slip(dh, caches):
    return _lstm_backward(dh, caches, carry=False)


def lstm_torch(x, p):
    N, T, _ = x.shape
    H = p["Wh"].shape[0]
    h = torch.zeros((N, H), dtype=x.dtype)
    c = torch.zeros((N, H), dtype=x.dtype)
    hs = []
    for t in range(T):
        a = x[:, t, :] @ p["Wx"] + h @ p["Wh"] + p["b"]
        i, f, o, g = (torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H:2 * H]),
                      torch.sigmoid(a[:, 2 * H:3 * H]), torch.tanh(a[:, 3 * H:]))
        c = f * c + i * g
        h = o * torch.tanh(c)
        hs.append(h)
    return torch.stack(hs, dim=1)


def lstm_jax(x, p):
    N, T, _ = x.shape
    H = p["Wh"].shape[0]
    h = jnp.zeros((N, H), dtype=x.dtype)
    c = jnp.zeros((N, H), dtype=x.dtype)
    hs = []
    for t in range(T):
        a = x[:, t, :] @ p["Wx"] + h @ p["Wh"] + p["b"]
        i, f, o, g = (jax.nn.sigmoid(a[:, :H]), jax.nn.sigmoid(a[:, H:2 * H]),
                      jax.nn.sigmoid(a[:, 2 * H:3 * H]), jnp.tanh(a[:, 3 * H:]))
        c = f * c + i * g
        h = o * jnp.tanh(c)
        hs.append(h)
    return jnp.stack(hs, axis=1)


LSTM_PARAMETERS = {"Wx": lambda s: (s[1], 4 * HIDDEN), "Wh": lambda s: (HIDDEN, 4 * HIDDEN),
                   "b": lambda s: (4 * HIDDEN,)}
lstm = UserLayer("my_lstm", lstm_forward, lstm_backward, torch=lstm_torch, jax=lstm_jax,
                 parameters=LSTM_PARAMETERS, output_shape=lambda s: (s[0], HIDDEN), rank=2)
lstm_slip = UserLayer("my_lstm", lstm_forward, lstm_backward_slip, torch=lstm_torch, jax=lstm_jax,
                      parameters=LSTM_PARAMETERS, output_shape=lambda s: (s[0], HIDDEN), rank=2)


def batchnorm_forward(x, params):
    """Training-mode batch norm over (N, D): statistics over the batch."""
    gamma, beta = params["gamma"], params["beta"]
    mu = x.mean(axis=0)
    xmu = x - mu
    var = np.mean(xmu ** 2, axis=0)
    sqrtvar = np.sqrt(var + BN_EPS)
    ivar = 1.0 / sqrtvar
    xhat = xmu * ivar
    out = gamma * xhat + beta
    return out, (xhat, gamma, ivar)


def batchnorm_backward(dout, cache, mean_term=True):
    """The one-line form: dx = (1/N)·γ/σ·(N·dout − Σdout − x̂·Σ(dout·x̂))."""
    xhat, gamma, ivar = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    total = N * dout - xhat * np.sum(dout * xhat, axis=0)
    if mean_term:  # the slip leaves Σdout out
        total = total - dbeta
    dx = (1.0 / N) * gamma * ivar * total
    return dx, {"gamma": dgamma, "beta": dbeta}


def batchnorm_backward_slip(dout, cache):
    return batchnorm_backward(dout, cache, mean_term=False)


def batchnorm_torch(x, p):
    mu = x.mean(dim=0)
    var = ((x - mu) ** 2).mean(dim=0)
    return p["gamma"] * (x - mu) / torch.sqrt(var + BN_EPS) + p["beta"]


def batchnorm_jax(x, p):
    mu = x.mean(axis=0)
    var = ((x - mu) ** 2).mean(axis=0)
    return p["gamma"] * (x - mu) / jnp.sqrt(var + BN_EPS) + p["beta"]


BN_PARAMETERS = {"gamma": lambda s: s[:1], "beta": lambda s: s[:1]}
batchnorm = UserLayer("my_batchnorm", batchnorm_forward, batchnorm_backward, torch=batchnorm_torch,
                      jax=batchnorm_jax, parameters=BN_PARAMETERS, rank=1)
batchnorm_slip = UserLayer("my_batchnorm", batchnorm_forward, batchnorm_backward_slip,
                           torch=batchnorm_torch, jax=batchnorm_jax, parameters=BN_PARAMETERS, rank=1)


def spatial_batchnorm_forward(x, params):
    """NCHW in, through NHWC: (N·H·W, C) rows into the vanilla batch norm."""
    N, C, H, W = x.shape
    x_flat = x.transpose(0, 2, 3, 1).reshape(-1, C)
    out, cache = batchnorm_forward(x_flat, params)
    return out.reshape(N, H, W, C).transpose(0, 3, 1, 2), cache


def _spatial_backward(dout, cache, mean_term):
    N, C, H, W = dout.shape
    dout_flat = dout.transpose(0, 2, 3, 1).reshape(-1, C)
    dx, grads = batchnorm_backward(dout_flat, cache, mean_term)
    return dx.reshape(N, H, W, C).transpose(0, 3, 1, 2), grads


def spatial_batchnorm_backward(dout, cache):
    return _spatial_backward(dout, cache, True)


def spatial_batchnorm_backward_slip(dout, cache):
    return _spatial_backward(dout, cache, False)


def _spatial(norm):
    def forward(x, p):
        C = x.shape[1]
        flat = x.permute(0, 2, 3, 1) if isinstance(x, torch.Tensor) else x.transpose(0, 2, 3, 1)
        out = norm(flat.reshape(-1, C), p)
        shaped = out.reshape(x.shape[0], x.shape[2], x.shape[3], C)
        return shaped.permute(0, 3, 1, 2) if isinstance(x, torch.Tensor) else shaped.transpose(0, 3, 1, 2)
    return forward


spatial_batchnorm = UserLayer("my_spatial_batchnorm", spatial_batchnorm_forward,
                              spatial_batchnorm_backward, torch=_spatial(batchnorm_torch),
                              jax=_spatial(batchnorm_jax), parameters=BN_PARAMETERS, rank=3)
spatial_batchnorm_slip = UserLayer("my_spatial_batchnorm", spatial_batchnorm_forward,
                                   spatial_batchnorm_backward_slip, torch=_spatial(batchnorm_torch),
                                   jax=_spatial(batchnorm_jax), parameters=BN_PARAMETERS, rank=3)
