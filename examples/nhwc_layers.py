"""Layers as a NumPy neural-net library writes them: images NHWC, conv weights stored
(kh, kw, C_in, C_out) with a bias (1, 1, 1, C_out), parameters and gradients in dicts on the
layer object, parameters made on the first forward. Each is checked by ``like=`` and
``layout=`` alone (bpcheck transposes); each has a twin with a real-looking bug, caught.

    bpcheck verify examples/nhwc_layers.py:conv           # agrees: exit 0
    bpcheck verify examples/nhwc_layers.py:conv_flipped   # convolution, not cross-correlation: exit 1
"""

import math

import numpy as np

from bpcheck import UserLayer, object_pair


def _windows(size, kernel, stride):
    """(output index, input slice) along one axis."""
    return [(i, slice(i * stride, i * stride + kernel)) for i in range(1 + (size - kernel) // stride)]


class Conv2D:
    """y[n, i, j, o] = Σ_{u, v, c} X_pad[n, s·i + u, s·j + v, c] W[u, v, c, o] + b[0, 0, 0, o]."""

    def __init__(self, out_ch, kernel_shape, stride=1, pad=0, flip=False):
        self.out_ch, self.kernel_shape, self.stride, self.pad = out_ch, kernel_shape, stride, pad
        self.flip = flip  # the twin's bug: the kernel flipped (a true convolution)
        self.parameters, self.gradients = {"W": None, "b": None}, {}

    def _init_params(self, in_ch):
        rng = np.random.default_rng(0)
        self.parameters = {"W": rng.standard_normal((*self.kernel_shape, in_ch, self.out_ch)) * 0.1,
                           "b": np.zeros((1, 1, 1, self.out_ch))}

    def _kernel(self):
        W = self.parameters["W"]
        return W[::-1, ::-1] if self.flip else W

    def forward(self, X):
        if self.parameters["W"] is None:
            self._init_params(X.shape[3])
        p = self.pad
        self.X_pad = np.pad(X, ((0, 0), (p, p), (p, p), (0, 0)))
        (kh, kw), W = self.kernel_shape, self._kernel()
        rows = _windows(self.X_pad.shape[1], kh, self.stride)
        cols = _windows(self.X_pad.shape[2], kw, self.stride)
        Y = np.zeros((X.shape[0], len(rows), len(cols), self.out_ch), dtype=X.dtype)
        for i, r in rows:
            for j, c in cols:
                Y[:, i, j, :] = np.einsum("nhwc,hwco->no", self.X_pad[:, r, c, :], W)
        return Y + self.parameters["b"]

    def backward(self, dLdy):
        (kh, kw), W, p = self.kernel_shape, self._kernel(), self.pad
        dX_pad, dW = np.zeros_like(self.X_pad), np.zeros_like(W)
        for i, r in _windows(self.X_pad.shape[1], kh, self.stride):
            for j, c in _windows(self.X_pad.shape[2], kw, self.stride):
                dW += np.einsum("nhwc,no->hwco", self.X_pad[:, r, c, :], dLdy[:, i, j, :])
                dX_pad[:, r, c, :] += np.einsum("no,hwco->nhwc", dLdy[:, i, j, :], W)
        self.gradients = {"W": dW[::-1, ::-1] if self.flip else dW,
                          "b": dLdy.sum(axis=(0, 1, 2), keepdims=True)}
        return dX_pad[:, p:dX_pad.shape[1] - p, p:dX_pad.shape[2] - p, :]


class Pool2D:
    """Average pooling over (kh, kw) windows at ``stride``, windows may overlap."""

    def __init__(self, kernel_shape, stride, accumulate=True):
        self.kernel_shape, self.stride, self.accumulate = kernel_shape, stride, accumulate

    def forward(self, X):
        self.X_shape = X.shape
        (kh, kw), s = self.kernel_shape, self.stride
        rows, cols = _windows(X.shape[1], kh, s), _windows(X.shape[2], kw, s)
        Y = np.zeros((X.shape[0], len(rows), len(cols), X.shape[3]), dtype=X.dtype)
        for i, r in rows:
            for j, c in cols:
                Y[:, i, j, :] = X[:, r, c, :].mean(axis=(1, 2))
        return Y

    def backward(self, dLdy):
        dX, (kh, kw) = np.zeros(self.X_shape, dtype=dLdy.dtype), self.kernel_shape
        rows, cols = _windows(self.X_shape[1], kh, self.stride), _windows(self.X_shape[2], kw, self.stride)
        for i, r in rows:
            for j, c in cols:
                share = dLdy[:, i, j, :][:, None, None, :] / (kh * kw)
                if self.accumulate:
                    dX[:, r, c, :] += share
                else:  # the twin's bug: overlapping windows overwrite each other's share
                    dX[:, r, c, :] = share
        return dX


class BatchNorm2D:
    """Over N, H, W per channel: y = scaler · (X − μ)/√(σ² + ε) + intercept."""

    def __init__(self, epsilon=1e-5, per_image=False):
        self.epsilon, self.per_image = epsilon, per_image
        self.parameters, self.gradients = {"scaler": None, "intercept": None}, {}

    def forward(self, X):
        if self.parameters["scaler"] is None:
            self.parameters = {"scaler": np.ones(X.shape[3]), "intercept": np.zeros(X.shape[3])}
        mean, var = X.mean(axis=(0, 1, 2)), X.var(axis=(0, 1, 2))
        self.inv_std = 1.0 / np.sqrt(var + self.epsilon)
        self.X_hat = (X - mean) * self.inv_std
        return self.parameters["scaler"] * self.X_hat + self.parameters["intercept"]

    def backward(self, dLdy):
        """dX = (scaler/σ)(dLdy − mean(dLdy) − X̂ mean(dLdy X̂)), means over the N·H·W values."""
        count = dLdy.shape[0] if self.per_image else math.prod(dLdy.shape[:3])  # the twin: N, not NHW
        total, weighted = dLdy.sum(axis=(0, 1, 2)), (dLdy * self.X_hat).sum(axis=(0, 1, 2))
        self.gradients = {"scaler": weighted, "intercept": total}
        scale = self.parameters["scaler"] * self.inv_std
        return scale * (dLdy - total / count - self.X_hat * weighted / count)


def _conv(**bug):
    return UserLayer("conv", *object_pair(lambda: Conv2D(2, (3, 3), stride=2, pad=1, **bug),
                                          parameters="parameters[{}]", gradients="gradients[{}]"),
                     like="conv2d:2,k3,s2,p1", parameters=("W", "b"),
                     layout={"x": "NHWC", "W": "HWIO", "b": "111O"})


def _pool(**bug):
    return UserLayer("avg_pool", *object_pair(lambda: Pool2D((3, 3), 2, **bug)),
                     like="avg_pool2d:k3,s2", layout="NHWC")


def _batch_norm(**bug):
    return UserLayer("bn2d", *object_pair(lambda: BatchNorm2D(**bug), parameters="parameters[{}]",
                                                gradients="gradients[{}]"),
                     like="batch_norm", parameters=("scaler", "intercept"), layout="NHWC")


conv, conv_flipped = _conv(), _conv(flip=True)
avg_pool, avg_pool_overwrites = _pool(), _pool(accumulate=False)
batch_norm, batch_norm_per_image = _batch_norm(), _batch_norm(per_image=True)
