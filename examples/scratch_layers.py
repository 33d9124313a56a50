"""Layers as a from-scratch deep-learning library writes them: objects with
``forward_pass(X)``/``backward_pass(accum_grad)`` that hold an optimizer (a copy per
parameter, given by ``initialize(optimizer)``) and update their own weights inside the backward
pass; weights made on the first forward pass. bpcheck hands them a recording optimizer
(``object_pair(..., optimizer=...)``) and reads the gradients they give it. The dropout draws
its mask from a Generator of its own, seeded where it is made: ``object_pair`` makes it afresh
for every call, so each call draws the same mask, which bpcheck reads back.

    bpcheck verify examples/scratch_layers.py:dense          # agrees: exit 0
    bpcheck verify examples/scratch_layers.py:dense_stale    # dx from the updated W: exit 1
"""

import copy

import numpy as np

from bpcheck import UserLayer, object_pair


class Dense:
    """X (N, n_in) @ W (n_in, n_units) + w0 (1, n_units)."""

    def __init__(self, n_units, keep_old_weights=True):
        self.n_units, self.keep_old_weights = n_units, keep_old_weights
        self.W = self.w0 = None

    def initialize(self, optimizer):
        self.W_opt, self.w0_opt = copy.copy(optimizer), copy.copy(optimizer)

    def forward_pass(self, X, training=True):
        if self.W is None:
            limit = 1 / np.sqrt(X.shape[1])
            self.W = np.random.default_rng(0).uniform(-limit, limit, (X.shape[1], self.n_units))
            self.w0 = np.zeros((1, self.n_units))
        self.layer_input = X
        return X.dot(self.W) + self.w0

    def backward_pass(self, accum_grad):
        W = self.W  # the weights the forward pass used
        grad_w = self.layer_input.T.dot(accum_grad)
        grad_w0 = np.sum(accum_grad, axis=0, keepdims=True)
        self.W = self.W_opt.update(self.W, grad_w)
        self.w0 = self.w0_opt.update(self.w0, grad_w0)
        return accum_grad.dot((W if self.keep_old_weights else self.W).T)  # the twin: the new W


class BatchNormalization:
    """Over the batch, per feature: gamma · (X − μ)/√(σ² + ε) + beta."""

    def __init__(self, eps=1e-5, keep_old_gamma=True):
        self.eps, self.keep_old_gamma = eps, keep_old_gamma
        self.gamma = self.beta = None

    def initialize(self, optimizer):
        self.gamma_opt, self.beta_opt = copy.copy(optimizer), copy.copy(optimizer)

    def forward_pass(self, X, training=True):
        if self.gamma is None:
            self.gamma, self.beta = np.ones(X.shape[1]), np.zeros(X.shape[1])
        self.X_centered = X - X.mean(axis=0)
        self.stddev_inv = 1 / np.sqrt(X.var(axis=0) + self.eps)
        self.X_norm = self.X_centered * self.stddev_inv
        return self.gamma * self.X_norm + self.beta

    def backward_pass(self, accum_grad):
        gamma = self.gamma
        grad_gamma = np.sum(accum_grad * self.X_norm, axis=0)
        grad_beta = np.sum(accum_grad, axis=0)
        self.gamma = self.gamma_opt.update(self.gamma, grad_gamma)
        self.beta = self.beta_opt.update(self.beta, grad_beta)
        gamma = gamma if self.keep_old_gamma else self.gamma  # the twin: the updated gamma
        n = accum_grad.shape[0]
        return (1 / n) * gamma * self.stddev_inv * (
            n * accum_grad - np.sum(accum_grad, axis=0)
            - self.X_centered * self.stddev_inv**2 * np.sum(accum_grad * self.X_centered, axis=0))


class Dropout:
    """Inverted dropout: a unit dropped with probability p, the kept ones scaled by 1/(1 − p)."""

    def __init__(self, p=0.25, seed=0, scaled_backward=True, fresh_mask=False):
        self.p, self.rng = p, np.random.default_rng(seed)
        self.scaled_backward, self.fresh_mask = scaled_backward, fresh_mask

    def forward_pass(self, X, training=True):
        self._mask = self.rng.random(X.shape) > self.p
        return X * self._mask / (1 - self.p)

    def backward_pass(self, accum_grad):
        fresh = self.rng.random(accum_grad.shape) > self.p
        mask = fresh if self.fresh_mask else self._mask  # the twin: a new mask
        return accum_grad * mask / ((1 - self.p) if self.scaled_backward else 1)  # the twin: unscaled


#: how this library's layers are called: bpcheck's optimizer handed over by ``initialize``
SCRATCH = {"methods": ("forward_pass", "backward_pass"),
           "optimizer": lambda layer, optimizer: layer.initialize(optimizer)}


def _dense(**bug):
    return UserLayer("dense_layer", *object_pair(lambda: Dense(3, **bug), **SCRATCH),
                     like="dense:3", parameters=("W", "w0"), layout={"W": "IO", "w0": "1O"})


def _batch_norm(**bug):
    return UserLayer("batch_normalization", *object_pair(lambda: BatchNormalization(**bug), **SCRATCH),
                     like="batch_norm", parameters=("gamma", "beta"), rank=1)


def _dropout(**bug):
    return UserLayer("dropout_layer", *object_pair(lambda: Dropout(0.25, **bug), methods=SCRATCH["methods"]),
                     like="dropout:p0.25")


dense, dense_stale = _dense(), _dense(keep_old_weights=False)
batch_norm, batch_norm_stale = _batch_norm(), _batch_norm(keep_old_gamma=False)
dropout, dropout_unscaled = _dropout(), _dropout(scaled_backward=False)
dropout_fresh_mask = _dropout(fresh_mask=True)
