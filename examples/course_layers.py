"""Layers as a course's assignment solution writes them (cs231n style: ``*_forward`` returns
``(out, cache)``, ``*_backward`` returns ``(dx, dw, db)``), each checked by ``like=`` with no
torch or jax code; each with a slip a student makes, caught as WRONG. The recurrent ones keep
one bias for both of torch's (``b = b_ih + b_hh``, declared as a tuple), take h0 per sample
(layout ``NH``), store weights (in, out) and stack an LSTM's gates i, f, o, g (``"gates"``).
The word embedding's backward returns dW alone; the dropout draws its mask from NumPy's global
RNG with ``p`` the probability of keeping a unit (bpcheck replays that RNG at every call).

    bpcheck verify examples/course_layers.py:conv         # agrees: exit 0
    bpcheck verify examples/course_layers.py:conv_slip    # the stride left out of dw: exit 1
"""

import numpy as np

from bpcheck import UserLayer


def affine_forward(x, w, b):
    """out = x.reshape(N, D) @ w + b, w of shape (D, M)."""
    return x.reshape(x.shape[0], -1) @ w + b, (x, w, b)


def affine_backward(dout, cache):
    x, w, _ = cache
    return (dout @ w.T).reshape(x.shape), x.reshape(x.shape[0], -1).T @ dout, dout.sum(axis=0)


def affine_backward_slip(dout, cache):
    """db averaged over the batch: a missing factor N."""
    dx, dw, db = affine_backward(dout, cache)
    return dx, dw, db / dout.shape[0]


def _windows(shape, kernel, stride):
    """Each output position (i, j) with its input window's slices."""
    rows, cols = (1 + (size - k) // stride for size, k in zip(shape, kernel, strict=True))
    for i in range(rows):
        for j in range(cols):
            yield i, j, np.s_[i * stride:i * stride + kernel[0]], np.s_[j * stride:j * stride + kernel[1]]


def conv_forward_naive(x, w, b, conv_param):
    """x (N, C, H, W), w (F, C, HH, WW); zero padding ``pad``, stride ``stride``."""
    pad, stride = conv_param["pad"], conv_param["stride"]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    rows, cols = (1 + (size - k) // stride for size, k in zip(xp.shape[2:], w.shape[2:], strict=True))
    out = np.zeros((x.shape[0], w.shape[0], rows, cols), dtype=x.dtype)
    for i, j, r, c in _windows(xp.shape[2:], w.shape[2:], stride):
        out[:, :, i, j] = np.tensordot(xp[:, :, r, c], w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache, dw_stride=None):
    x, w, _, conv_param = cache
    pad, stride = conv_param["pad"], conv_param["stride"]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i, j, r, c in _windows(xp.shape[2:], w.shape[2:], stride):
        dxp[:, :, r, c] += np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
    for i, j, r, c in _windows(xp.shape[2:], w.shape[2:], dw_stride or stride):
        if i < dout.shape[2] and j < dout.shape[3]:
            dw += np.tensordot(dout[:, :, i, j], xp[:, :, r, c], axes=([0], [0]))
    return dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]], dw, dout.sum(axis=(0, 2, 3))


def conv_backward_slip(dout, cache):
    """The weight gradient's windows taken at stride 1 (the forward's stride left out of dw)."""
    return conv_backward_naive(dout, cache, dw_stride=1)


def max_pool_forward_naive(x, pool_param):
    kernel, stride = (pool_param["pool_height"], pool_param["pool_width"]), pool_param["stride"]
    rows, cols = (1 + (size - k) // stride for size, k in zip(x.shape[2:], kernel, strict=True))
    out = np.zeros((*x.shape[:2], rows, cols), dtype=x.dtype)
    for i, j, r, c in _windows(x.shape[2:], kernel, stride):
        out[:, :, i, j] = x[:, :, r, c].max(axis=(2, 3))
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache, per_window=True):
    x, pool_param = cache
    kernel, stride = (pool_param["pool_height"], pool_param["pool_width"]), pool_param["stride"]
    dx = np.zeros_like(x)
    for i, j, r, c in _windows(x.shape[2:], kernel, stride):
        window = x[:, :, r, c]
        top = window.max(axis=(2, 3), keepdims=True) if per_window else window.max()
        dx[:, :, r, c] += (window == top) * dout[:, :, i, j][:, :, None, None]
    return dx


def max_pool_backward_slip(dout, cache):
    """The maximum taken over the whole batch's window (``axis=`` forgotten)."""
    return max_pool_backward_naive(dout, cache, per_window=False)


def batchnorm_forward(x, gamma, beta, bn_param):
    """Training mode: x̂ = (x − μ)/√(σ² + ε) over the batch, out = γ x̂ + β."""
    eps = bn_param.get("eps", 1e-5)
    mu, var = x.mean(axis=0), x.var(axis=0)
    x_hat = (x - mu) / np.sqrt(var + eps)
    return gamma * x_hat + beta, (x, x_hat, mu, var, gamma, eps)


def batchnorm_backward(dout, cache, dmu_scale=None):
    x, x_hat, mu, var, gamma, eps = cache
    n = x.shape[0]
    dx_hat = dout * gamma
    dvar = np.sum(dx_hat * (x - mu), axis=0) * -0.5 * (var + eps) ** -1.5
    dmu = -np.sum(dx_hat, axis=0) / np.sqrt(var + eps) + dvar * np.mean(-2 * (x - mu), axis=0)
    dx = dx_hat / np.sqrt(var + eps) + dvar * 2 * (x - mu) / n + dmu * (dmu_scale or 1 / n)
    return dx, np.sum(dout * x_hat, axis=0), np.sum(dout, axis=0)


def batchnorm_backward_slip(dout, cache):
    """The mean's path without its 1/N."""
    return batchnorm_backward(dout, cache, dmu_scale=1.0)


def rnn_forward(x, h0, Wx, Wh, b):
    """h_t = tanh(x_t Wx + h_{t−1} Wh + b) for every step; x (N, T, D), h0 (N, H)."""
    h, prev, caches = np.zeros((*x.shape[:2], Wh.shape[0]), dtype=x.dtype), h0, []
    for t in range(x.shape[1]):
        prev = np.tanh(x[:, t] @ Wx + prev @ Wh + b)
        caches.append((x[:, t], h[:, t - 1] if t else h0, prev))
        h[:, t] = prev
    return h, (caches, Wx, Wh)


def rnn_backward(dh, cache, window=None):
    """Back through time; ``window``: the twin's truncated BPTT, the carried gradient dropped
    after that many steps."""
    caches, Wx, Wh = cache
    dx = np.zeros((*dh.shape[:2], Wx.shape[0]), dtype=dh.dtype)
    dWx, dWh, db, dprev = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(Wh[0]), np.zeros_like(dh[:, 0])
    for t in reversed(range(dh.shape[1])):
        x_t, prev_h, next_h = caches[t]
        if window is not None and dh.shape[1] - t > window:
            dprev = np.zeros_like(dprev)
        da = (dh[:, t] + dprev) * (1 - next_h**2)
        dx[:, t], dprev = da @ Wx.T, da @ Wh.T
        dWx, dWh, db = dWx + x_t.T @ da, dWh + prev_h.T @ da, db + da.sum(axis=0)
    return dx, dprev, dWx, dWh, db


def rnn_backward_truncated(dh, cache):
    return rnn_backward(dh, cache, window=3)


def lstm_forward(x, h0, c0, Wx, Wh, b):
    """Gates a = x_t Wx + h Wh + b split as i, f, o, g; c = f·c + i·g, h = o·tanh(c)."""
    n, steps, H = *x.shape[:2], Wh.shape[0]
    h, prev_h, prev_c, caches = np.zeros((n, steps, H), dtype=x.dtype), h0, c0, []
    for t in range(steps):
        a = x[:, t] @ Wx + prev_h @ Wh + b
        i, f, o = (1 / (1 + np.exp(-a[:, k * H:(k + 1) * H])) for k in range(3))
        g = np.tanh(a[:, 3 * H:])
        c = f * prev_c + i * g
        caches.append((x[:, t], prev_h, prev_c, i, f, o, g, c))
        prev_h, prev_c = o * np.tanh(c), c
        h[:, t] = prev_h
    return h, (caches, Wx, Wh)


def lstm_backward(dh, cache, forget_path=True):
    """``forget_path``: the twin drops the cell gradient's path through f (dc_prev = dc, not f·dc)."""
    caches, Wx, Wh = cache
    dx = np.zeros((*dh.shape[:2], Wx.shape[0]), dtype=dh.dtype)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(Wx[0])
    dprev_h, dprev_c = np.zeros_like(dh[:, 0]), np.zeros_like(dh[:, 0])
    for t in reversed(range(dh.shape[1])):
        x_t, prev_h, prev_c, i, f, o, g, c = caches[t]
        dnext_h = dh[:, t] + dprev_h
        dc = dprev_c + dnext_h * o * (1 - np.tanh(c) ** 2)
        da = np.concatenate([dc * g * i * (1 - i), dc * prev_c * f * (1 - f),
                             dnext_h * np.tanh(c) * o * (1 - o), dc * i * (1 - g**2)], axis=1)
        dx[:, t], dprev_h, dprev_c = da @ Wx.T, da @ Wh.T, dc * f if forget_path else dc
        dWx, dWh, db = dWx + x_t.T @ da, dWh + prev_h.T @ da, db + da.sum(axis=0)
    return dx, dprev_h, dprev_c, dWx, dWh, db


def lstm_backward_slip(dh, cache):
    return lstm_backward(dh, cache, forget_path=False)


def word_embedding_forward(x, W):
    """out[n, t] = W[x[n, t]]: x (N, T) integer tokens, W (V, D)."""
    return W[x], (x, W)


def word_embedding_backward(dout, cache, accumulate=True):
    """dW alone (tokens have no gradient): np.add.at sums the rows of a repeated token."""
    x, W = cache
    dW = np.zeros_like(W)
    if accumulate:
        np.add.at(dW, x, dout)
    else:
        dW[x] = dout  # the twin: a repeated token keeps one of its rows
    return dW


def word_embedding_backward_slip(dout, cache):
    return word_embedding_backward(dout, cache, accumulate=False)


def dropout_forward(x, dropout_param, rescale=True):
    """Inverted dropout in training mode: a unit kept with probability ``p``, scaled by 1/p."""
    p = dropout_param["p"]
    mask = (np.random.rand(*x.shape) < p) / (p if rescale else 1)  # noqa: NPY002 (the course's habit)
    return x * mask, (dropout_param, mask)


def dropout_backward(dout, cache):
    return dout * cache[1]


def dropout_forward_slip(x, dropout_param):
    """The kept units not rescaled: the forward is not dropout's."""
    return dropout_forward(x, dropout_param, rescale=False)


CONV = {"stride": 2, "pad": 1}
KEEP = {"p": 0.75, "mode": "train"}  # dropout:p0.25 drops a quarter
POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}


def _affine(backward):
    return UserLayer("affine", lambda x, p: affine_forward(x, p["w"], p["b"]), backward,
                     like="dense:3", parameters=("w", "b"), layout={"w": "IO"})


def _conv(backward):
    return UserLayer("conv", lambda x, p: conv_forward_naive(x, p["w"], p["b"], CONV), backward,
                     like="conv2d:2,k3,s2,p1", parameters=("w", "b"))


def _pool(backward):
    return UserLayer("max_pool", lambda x, p: max_pool_forward_naive(x, POOL), backward,
                     like="max_pool2d:k2,s2")


def _batchnorm(backward):
    return UserLayer("batchnorm", lambda x, p: batchnorm_forward(x, p["gamma"], p["beta"], {}), backward,
                     like="batch_norm", parameters=("gamma", "beta"), rank=1)


def _rnn(backward):
    return UserLayer("vanilla_rnn", lambda x, p: rnn_forward(x, p["h0"], p["Wx"], p["Wh"], p["b"]), backward,
                     like="rnn:3", parameters={"h0": "h0", "Wx": "W_ih", "Wh": "W_hh", "b": ("b_ih", "b_hh")},
                     layout={"h0": "NH", "Wx": "IO", "Wh": "IO"})


def _lstm(backward):
    return UserLayer("lstm_layer", lambda x, p: lstm_forward(x, p["h0"], p["c0"], p["Wx"], p["Wh"], p["b"]),
                     backward, like="lstm:2",
                     parameters={"h0": "h0", "c0": "c0", "Wx": "W_ih", "Wh": "W_hh", "b": ("b_ih", "b_hh")},
                     layout={"h0": "NH", "c0": "NH", "Wx": "IO", "Wh": "IO", "gates": "ifog"})


def _embedding(backward):
    return UserLayer("word_embedding", lambda x, p: word_embedding_forward(x, p["W"]), backward,
                     like="embedding:4,v10")


def _dropout(forward):
    return UserLayer("course_dropout", lambda x, p: forward(x, KEEP), dropout_backward, like="dropout:p0.25")


affine, affine_slip = _affine(affine_backward), _affine(affine_backward_slip)
rnn, rnn_truncated = _rnn(rnn_backward), _rnn(rnn_backward_truncated)
lstm, lstm_slip = _lstm(lstm_backward), _lstm(lstm_backward_slip)
conv, conv_slip = _conv(conv_backward_naive), _conv(conv_backward_slip)
max_pool, max_pool_slip = _pool(max_pool_backward_naive), _pool(max_pool_backward_slip)
batchnorm, batchnorm_slip = _batchnorm(batchnorm_backward), _batchnorm(batchnorm_backward_slip)
word_embedding = _embedding(word_embedding_backward)
word_embedding_slip = _embedding(word_embedding_backward_slip)
dropout, dropout_slip = _dropout(dropout_forward), _dropout(dropout_forward_slip)
