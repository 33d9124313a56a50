"""A two-layer binary classifier as an object that trains itself in place: samples are rows,
weights in × out with (1, n) bias rows as attributes, tanh hidden units, a sigmoid output with
binary cross-entropy averaged over the batch, and weight decay λ/2‖W‖² on the weights.

It carries a slip that training curves hide: ``train`` decays the biases too.

    bpcheck verify examples/trainer_class.py:trainer_rule   # WRONG on b1, b2: exit 1
"""

import numpy as np

from bpcheck import Conventions, UserRule


class TwoLayerClassifier:
    def __init__(self, n_in, n_hidden, learning_rate=0.1, weight_decay=0.01, seed=0):
        rng = np.random.default_rng(seed)
        self.W1 = rng.normal(0, 1 / np.sqrt(n_in), (n_in, n_hidden))
        self.b1 = np.zeros((1, n_hidden))
        self.W2 = rng.normal(0, 1 / np.sqrt(n_hidden), (n_hidden, 1))
        self.b2 = np.zeros((1, 1))
        self.learning_rate, self.weight_decay = learning_rate, weight_decay

    def predict_proba(self, X):
        hidden = np.tanh(X @ self.W1 + self.b1)
        return 1 / (1 + np.exp(-(hidden @ self.W2 + self.b2)))

    def train(self, X, y):
        """One gradient-descent step on the batch X (N, n_in), y (N, 1) in [0, 1]."""
        hidden = np.tanh(X @ self.W1 + self.b1)
        p = 1 / (1 + np.exp(-(hidden @ self.W2 + self.b2)))
        dz2 = (p - y) / len(X)
        dW2, db2 = hidden.T @ dz2, dz2.sum(axis=0, keepdims=True)
        dz1 = (dz2 @ self.W2.T) * (1 - hidden**2)
        dW1, db1 = X.T @ dz1, dz1.sum(axis=0, keepdims=True)
        for name, grad in (("W1", dW1), ("b1", db1), ("W2", dW2), ("b2", db2)):
            value = getattr(self, name)
            value -= self.learning_rate * (grad + self.weight_decay * value)


WEIGHT_DECAY = 0.25

trainer_rule = UserRule(
    "trainer_class", lambda model, X, y, lr: model.train(X, y), computes="in_place",
    model=lambda sizes, lr: TwoLayerClassifier(sizes[0], sizes[1], lr, WEIGHT_DECAY),
    activations=("tanh", "sigmoid"), loss="bce", reduction="mean", l2=WEIGHT_DECAY,
    sizes=None,
    conventions=Conventions(params={"W1": "W1", "b1": "b1", "W2": "W2", "b2": "b2"},
                            weights="in_out", bias="row", data="samples_as_rows"),
)
