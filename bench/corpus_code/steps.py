"""Training steps and backward passes as people write them, declared as UserRules: a loop over
samples accumulating gradients, one sample at a time as flat vectors, a vectorised cs231n-style
batch step with L2, a Nielsen-style step returning new lists of weights, an object that trains
itself in place, and a depth-generic loop returning Δθ."""

from __future__ import annotations

import numpy as np

from bpcheck import Conventions, UserRule
from corpus_code import Entry


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


# 1. a loop over samples, accumulating --------------------------------------------------------
def loop_grads(params, X, Y, overwrite=False):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    dW1, db1, dW2, db2 = (np.zeros_like(W1), np.zeros_like(b1), np.zeros_like(W2), np.zeros_like(b2))
    for x, y in zip(X, Y, strict=True):
        h = sigmoid(x @ W1 + b1)
        out = sigmoid(h @ W2 + b2)
        d2 = (out - y) * out * (1 - out)
        d1 = (W2 @ d2) * h * (1 - h)
        dW2 += np.outer(h, d2)
        db2 += d2
        if overwrite:  # the slip: = where += was meant, only the last sample is kept
            dW1, db1 = np.outer(x, d1), d1
        else:
            dW1 += np.outer(x, d1)
            db1 += d1
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


# 2. one sample as flat vectors ---------------------------------------------------------------
def sample_grads(params, x, y, slip=False):
    W1, b1, W2, b2 = params
    z1 = W1 @ x + b1
    h = np.tanh(z1)
    out = W2 @ h + b2
    dout = 2 * (out - y) / len(y)
    dh = W2.T @ dout
    dz1 = dh * (1 - (z1 if slip else h) ** 2)
    return [np.outer(dz1, x), dz1, np.outer(dout, h), dout]


# 3. a vectorised batch step, cs231n style ------------------------------------------------------
REG = 0.25


def batch_grads(params, X, y, double_reg=False):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    N = X.shape[0]
    hidden = np.maximum(0, X @ W1 + b1)
    scores = hidden @ W2 + b2
    scores = scores - scores.max(axis=1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=1, keepdims=True)
    dscores = probs.copy()
    dscores[np.arange(N), y] -= 1
    dscores /= N
    reg = 2 * REG if double_reg else REG  # loss += 0.5 * reg * Σ W²
    dW2 = hidden.T @ dscores + reg * W2
    db2 = dscores.sum(axis=0)
    dhidden = dscores @ W2.T
    dhidden[hidden <= 0] = 0
    dW1 = X.T @ dhidden + reg * W1
    db1 = dhidden.sum(axis=0)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


# 4. Nielsen style: lists of weights and (n, 1) bias columns, new lists back ---------------------
def nielsen_step(params, X, Y, lr, twice=False):
    W1, b1, W2, b2 = params
    n = X.shape[1]
    a1 = sigmoid(W1 @ X + b1)
    a2 = sigmoid(W2 @ a1 + b2)
    delta2 = (a2 - Y) / n  # binary cross-entropy through the sigmoid, averaged
    delta1 = (W2.T @ delta2) * a1 * (1 - a1)
    nabla_w2 = delta2 @ a1.T / (n if twice else 1)
    return [W1 - lr * delta1 @ X.T, b1 - lr * delta1.sum(axis=1, keepdims=True),
            W2 - lr * nabla_w2, b2 - lr * delta2.sum(axis=1, keepdims=True)]


# 5. an object that trains itself --------------------------------------------------------------
DECAY = 0.01


class TinyNet:
    def __init__(self, n_in, n_hidden, n_out, lr, stale=False):
        self.W1 = np.zeros((n_in, n_hidden))
        self.b1 = np.zeros((1, n_hidden))
        self.W2 = np.zeros((n_hidden, n_out))
        self.b2 = np.zeros((1, n_out))
        self.lr, self.stale = lr, stale

    def step(self, X, Y):
        h = np.tanh(X @ self.W1 + self.b1)
        p = sigmoid(h @ self.W2 + self.b2)
        dz2 = (p - Y) / len(X)
        dW2 = h.T @ dz2 + DECAY * self.W2
        if self.stale:  # the slip: W2 updated before the error is sent back through it
            self.W2 -= self.lr * dW2
            self.b2 -= self.lr * dz2.sum(axis=0, keepdims=True)
        dz1 = (dz2 @ self.W2.T) * (1 - h ** 2)
        self.W1 -= self.lr * (X.T @ dz1 + DECAY * self.W1)
        self.b1 -= self.lr * dz1.sum(axis=0, keepdims=True)
        if not self.stale:
            self.W2 -= self.lr * dW2
            self.b2 -= self.lr * dz2.sum(axis=0, keepdims=True)


# 6. any depth, relu, mse, Δθ -------------------------------------------------------------------
def deep_update(params, X, Y, lr, slip=False):
    L = len(params) // 2
    A, Z = [X], []
    for k in range(1, L + 1):
        Z.append(params[f"W{k}"] @ A[-1] + params[f"b{k}"])
        A.append(np.maximum(Z[-1], 0) if k < L else Z[-1])
    n = X.shape[1]
    delta = 2 * (A[-1] - Y) / Y.shape[0]
    update = {}
    for k in range(L, 0, -1):
        update[f"W{k}"] = -lr * delta @ A[k - 1].T / n
        update[f"b{k}"] = -lr * delta.sum(axis=1, keepdims=True) / (1 if slip else n)
        if k > 1:
            delta = (params[f"W{k}"].T @ delta) * (Z[k - 2] > 0)
    return update


def _steps(name: str, form: str, slip: str, correct: dict, twin: dict, **declared) -> Entry:
    return Entry(name, "step", form, UserRule(name, **correct, **declared),
                 UserRule(f"{name}_twin", **twin, **declared), slip)


ROWS_DICT = Conventions(params="dict", weights="in_out", bias="vector", data="samples_as_rows")
ENTRIES = [
    _steps("loop_accumulate", "for x, y in zip(X, Y): += outer products; dict, x @ W", "= for += on W1, b1",
           {"function": loop_grads}, {"function": lambda p, X, Y: loop_grads(p, X, Y, overwrite=True)},
           activations=("sigmoid", "sigmoid"), loss="half-sse", reduction="sum", conventions=ROWS_DICT),
    _steps("per_sample_vectors", "one sample as flat vectors, [W1, b1, W2, b2], W @ x; tanh, mse",
           "tanh′ = 1 − z² for 1 − a²", {"function": sample_grads},
           {"function": lambda p, x, y: sample_grads(p, x, y, slip=True)},
           per_sample=True, sample="vector", activations=("tanh", "identity"), loss="mse",
           reduction="mean", conventions=Conventions(params="list", weights="out_in", bias="vector")),
    _steps("cs231n_batch", "vectorised relu + softmax on labels, dscores /= N, reg·W",
           "2·reg·W for the ½·reg·ΣW² penalty", {"function": batch_grads},
           {"function": lambda p, X, y: batch_grads(p, X, y, double_reg=True)},
           activations=("relu", "identity"), loss="softmax-ce-labels", reduction="mean", l2=REG,
           conventions=Conventions(params="dict", weights="in_out", bias="vector",
                                   data="samples_as_rows", targets="labels")),
    _steps("nielsen_new_params", "returns new [W1, b1, W2, b2], (n, 1) bias columns, samples as columns",
           "∇W2 divided by n twice", {"function": nielsen_step, "computes": "new_params"},
           {"function": lambda p, X, Y, lr: nielsen_step(p, X, Y, lr, twice=True), "computes": "new_params"},
           activations=("sigmoid", "sigmoid"), loss="bce", reduction="mean",
           conventions=Conventions(params="list", weights="out_in", bias="column",
                                   data="samples_as_columns")),
    _steps("object_in_place", "a class whose .step(X, Y) updates .W1 … in place, weight decay",
           "W2 updated before the error is sent back through it",
           {"function": lambda net, X, Y, lr: net.step(X, Y), "computes": "in_place",
            "model": lambda sizes, lr: TinyNet(*sizes, lr)},
           {"function": lambda net, X, Y, lr: net.step(X, Y), "computes": "in_place",
            "model": lambda sizes, lr: TinyNet(*sizes, lr, stale=True)},
           activations=("tanh", "sigmoid"), loss="bce", reduction="mean", l2=DECAY,
           conventions=Conventions(params={"W1": "W1", "b1": "b1", "W2": "W2", "b2": "b2"},
                                   weights="in_out", bias="row", data="samples_as_rows")),
    _steps("deep_update", "any depth, a backward loop over W{k}, returns Δθ; relu, mse",
           "the biases' Δ not divided by n", {"function": deep_update, "computes": "update"},
           {"function": lambda p, X, Y, lr: deep_update(p, X, Y, lr, slip=True), "computes": "update"},
           activations=("relu", "identity"), hidden_layers=(1, 3), loss="mse", reduction="mean",
           conventions=Conventions(params="dict", weights="out_in", bias="column",
                                   data="samples_as_columns")),
]
