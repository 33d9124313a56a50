"""A batch classifier in the style of course assignments: samples are rows, weights are
in × out, relu hidden layers, softmax cross-entropy on integer labels, averaged over the batch.

    bpcheck verify examples/batch_classifier.py:classifier_rule   # agrees: exit 0
"""

import numpy as np

from bpcheck import Conventions, UserRule


def forward_backward(params, X, y):
    """Loss and gradients of a relu MLP with a softmax output: params = {'W1', 'b1', ...}."""
    depth = len(params) // 2
    hidden, cache = X, []
    for i in range(1, depth):
        cache.append(hidden)
        hidden = np.maximum(0, hidden @ params[f"W{i}"] + params[f"b{i}"])
    scores = hidden @ params[f"W{depth}"] + params[f"b{depth}"]
    scores = scores - scores.max(axis=1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=1, keepdims=True)
    n = X.shape[0]
    loss = -np.log(probs[np.arange(n), y]).mean()

    grads = {}
    dscores = probs.copy()
    dscores[np.arange(n), y] -= 1
    dscores /= n
    grads[f"W{depth}"] = hidden.T @ dscores
    grads[f"b{depth}"] = dscores.sum(axis=0)
    dhidden = dscores @ params[f"W{depth}"].T
    for i in range(depth - 1, 0, -1):
        dhidden = dhidden * (hidden > 0)
        grads[f"W{i}"] = cache[i - 1].T @ dhidden
        grads[f"b{i}"] = dhidden.sum(axis=0)
        hidden = cache[i - 1]
        dhidden = dhidden @ params[f"W{i}"].T
    return loss, grads


def gradients(params, X, y):
    return forward_backward(params, X, y)[1]


# softmax-ce-labels applies the softmax itself, so the output layer is declared 'identity'.
classifier_rule = UserRule(
    "batch_classifier", gradients,
    activations=("relu", "identity"), hidden_layers=(1, 3), loss="softmax-ce-labels", reduction="mean",
    conventions=Conventions(params="dict", weights="in_out", data="samples_as_rows"),
)
