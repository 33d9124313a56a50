"""Recurrent layers over a sequence (N, T, D) → (N, T, D), hidden size D, as course notes write
them: a tanh RNN with backpropagation through time, and an LSTM cell (gates i, f, o, g stacked
in one (D, 4D) matrix) run over the steps."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch

from corpus_code.layers import _pair


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


# tanh RNN ----------------------------------------------------------------------------------------
def rnn_forward(x, params):
    Wx, Wh, b = params["Wx"], params["Wh"], params["b"]
    N, T, D = x.shape
    h = np.zeros((N, D), dtype=x.dtype)
    hs = []
    for t in range(T):
        h = np.tanh(x[:, t] @ Wx + h @ Wh + b)
        hs.append(h)
    return np.stack(hs, axis=1), (x, hs, Wx, Wh)


def rnn_backward(dout, cache, through_time=True):
    x, hs, Wx, Wh = cache
    N, T, D = x.shape
    dx = np.zeros_like(x)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(D, dtype=x.dtype)
    dh_next = np.zeros((N, D), dtype=x.dtype)
    for t in reversed(range(T)):
        dh = dout[:, t] + (dh_next if through_time else 0)
        dz = dh * (1 - hs[t] ** 2)
        h_prev = hs[t - 1] if t > 0 else np.zeros_like(hs[0])
        dWx += x[:, t].T @ dz
        dWh += h_prev.T @ dz
        db += dz.sum(axis=0)
        dx[:, t] = dz @ Wx.T
        dh_next = dz @ Wh.T
    return dx, {"Wx": dWx, "Wh": dWh, "b": db}


def rnn_torch(x, p):
    h = torch.zeros_like(x[:, 0])
    out = []
    for t in range(x.shape[1]):
        h = torch.tanh(x[:, t] @ p["Wx"] + h @ p["Wh"] + p["b"])
        out.append(h)
    return torch.stack(out, dim=1)


def rnn_jax(x, p):
    def step(h, xt):
        h = jnp.tanh(xt @ p["Wx"] + h @ p["Wh"] + p["b"])
        return h, h

    _, hs = jax.lax.scan(step, jnp.zeros_like(x[:, 0]), jnp.swapaxes(x, 0, 1))
    return jnp.swapaxes(hs, 0, 1)


# LSTM --------------------------------------------------------------------------------------------
def lstm_forward(x, params):
    W, U, b = params["W"], params["U"], params["b"]
    N, T, D = x.shape
    h, c = np.zeros((N, D), dtype=x.dtype), np.zeros((N, D), dtype=x.dtype)
    steps = []
    for t in range(T):
        a = x[:, t] @ W + h @ U + b
        i, f, o = sigmoid(a[:, :D]), sigmoid(a[:, D:2 * D]), sigmoid(a[:, 2 * D:3 * D])
        g = np.tanh(a[:, 3 * D:])
        c_prev, h_prev = c, h
        c = f * c + i * g
        h = o * np.tanh(c)
        steps.append((i, f, o, g, c, c_prev, h_prev, h))
    return np.stack([s[-1] for s in steps], axis=1), (x, steps, W, U)


def lstm_backward(dout, cache, forget_gate=True):
    x, steps, W, U = cache
    N, T, D = x.shape
    dx, dW, dU = np.zeros_like(x), np.zeros_like(W), np.zeros_like(U)
    db = np.zeros(4 * D, dtype=x.dtype)
    dh_next, dc_next = np.zeros((N, D), dtype=x.dtype), np.zeros((N, D), dtype=x.dtype)
    for t in reversed(range(T)):
        i, f, o, g, c, c_prev, h_prev, _ = steps[t]
        dh = dout[:, t] + dh_next
        tc = np.tanh(c)
        dc = dc_next + dh * o * (1 - tc ** 2)
        da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f),
                             dh * tc * o * (1 - o), dc * i * (1 - g ** 2)], axis=1)
        dW += x[:, t].T @ da
        dU += h_prev.T @ da
        db += da.sum(axis=0)
        dx[:, t] = da @ W.T
        dh_next = da @ U.T
        dc_next = dc * f if forget_gate else dc  # the slip: the cell's path through f lost
    return dx, {"W": dW, "U": dU, "b": db}


def lstm_torch(x, p):
    D = x.shape[-1]
    h = c = torch.zeros_like(x[:, 0])
    out = []
    for t in range(x.shape[1]):
        a = x[:, t] @ p["W"] + h @ p["U"] + p["b"]
        i, f, o = torch.sigmoid(a[:, :D]), torch.sigmoid(a[:, D:2 * D]), torch.sigmoid(a[:, 2 * D:3 * D])
        c = f * c + i * torch.tanh(a[:, 3 * D:])
        h = o * torch.tanh(c)
        out.append(h)
    return torch.stack(out, dim=1)


def lstm_jax(x, p):
    D = x.shape[-1]

    def step(carry, xt):
        h, c = carry
        a = xt @ p["W"] + h @ p["U"] + p["b"]
        i, f, o = jax.nn.sigmoid(a[:, :D]), jax.nn.sigmoid(a[:, D:2 * D]), jax.nn.sigmoid(a[:, 2 * D:3 * D])
        c = f * c + i * jnp.tanh(a[:, 3 * D:])
        h = o * jnp.tanh(c)
        return (h, c), h

    zeros = jnp.zeros_like(x[:, 0])
    _, hs = jax.lax.scan(step, (zeros, zeros), jnp.swapaxes(x, 0, 1))
    return jnp.swapaxes(hs, 0, 1)


def _square(shape):
    return (shape[-1], shape[-1])


def _gates(shape):
    return (shape[-1], 4 * shape[-1])


ENTRIES = [
    _pair("rnn_tanh", "h_t = tanh(x_t Wx + h_{t−1} Wh + b), backpropagation through time",
          rnn_forward, rnn_backward, lambda dout, cache: rnn_backward(dout, cache, through_time=False),
          "dh from the next step not carried back (truncated to one step)",
          torch=rnn_torch, jax=rnn_jax, rank=2,
          parameters={"Wx": _square, "Wh": _square, "b": lambda s: s[-1:]}),
    _pair("lstm_cell", "LSTM cell over the steps, gates i, f, o, g in one (D, 4D) matrix",
          lstm_forward, lstm_backward, lambda dout, cache: lstm_backward(dout, cache, forget_gate=False),
          "dc passed back without the forget gate's f",
          torch=lstm_torch, jax=lstm_jax, rank=2,
          parameters={"W": _gates, "U": _gates, "b": lambda s: (4 * s[-1],)}),
]
