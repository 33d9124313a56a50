"""What a rule's error costs in practice: loss and accuracy while training (``bpcheck train``).

Every rule starts from the same initial weights and sees the same mini-batches in the same
order, for each learning rate; the data are ``bpcheck.core.datasets``' iris and digits splits.
"""

from __future__ import annotations

import numpy as np

from bpcheck.core.datasets import Split, seed_program_hidden_width
from bpcheck.core.training import Curve, finite_params
from manual import network
from manual.rules import UpdateRule
from manual.spec import Spec, target_kind


def accuracy(spec: Spec, params, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(network.predict(spec, params, X), axis=0) == y))


def train_curve(rule: UpdateRule, spec: Spec, params, data: Split, lr: float, epochs: int,
                batch: int, seed: int, dataset: str, on_epoch=lambda: None) -> Curve:
    """Mini-batch training with ``rule.step``; epoch e visits the samples in the order of
    permutation(seed + e), the same for every rule and learning rate. Where a step or the loss
    overflows, the curve stops: ``diverged`` is that epoch."""
    curve, n = Curve(dataset, rule.name, lr), data.X_train.shape[1]
    Y = split_targets(spec, data)
    for epoch in range(epochs):
        order = np.random.default_rng(seed + 1 + epoch).permutation(n)
        try:
            with network.quiet():  # overflow is checked for, not warned about
                for start in range(0, n, batch):
                    chosen = order[start:start + batch]
                    params = rule.step(spec, params, data.X_train[:, chosen], Y[..., chosen], lr)
                    if not finite_params(params):
                        raise network.Overflow("the step")
                loss = network.loss(spec, params, data.X_train, Y)
                scores = (accuracy(spec, params, data.X_train, data.y_train),
                          accuracy(spec, params, data.X_test, data.y_test))
        except FloatingPointError:  # manual.network.Overflow: a value outgrew the dtype
            curve.diverged = epoch + 1
            return curve
        curve.loss.append(loss)
        curve.train_accuracy.append(scores[0])
        curve.test_accuracy.append(scores[1])
        on_epoch()
    return curve


def seed_program_spec(data: Split, hidden: tuple[int, ...] | None, random_seed: int,
                      activations: tuple[str, ...] | None = None, loss: str = "half-sse") -> Spec:
    """The seed program's network for this data — sigmoid, ½-squared error summed, bias node, the
    hidden width from the seed program's formula (drawn with ``random_seed``) — or the family
    member the arguments name."""
    if hidden is None:
        rng = np.random.default_rng(random_seed)
        hidden = (seed_program_hidden_width(data.X_train.shape[1], rng),)
    sizes = (data.features, *hidden, data.classes)
    return Spec(sizes, activations or ("sigmoid",) * (len(sizes) - 1), loss)


def split_targets(spec: Spec, data: Split) -> np.ndarray:
    """One-hot columns, or class labels for a loss that takes labels."""
    return data.y_train if target_kind(spec.loss) == "labels" else data.Y_train
