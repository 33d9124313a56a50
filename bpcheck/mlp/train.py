"""What a rule's error costs in practice: loss and accuracy while training (``bpcheck train``).

Every rule starts from the same initial weights and sees the same mini-batches in the same
order, for each learning rate; the data are ``bpcheck.core.datasets``' iris and digits splits.
"""

from __future__ import annotations

import numpy as np

from bpcheck.core.datasets import Split, seed_program_hidden_width
from bpcheck.core.training import Curve, finite_params, training_curve
from manual import network
from manual.rules import UpdateRule
from manual.spec import Spec, target_kind


def accuracy(spec: Spec, params, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(network.predict(spec, params, X), axis=0) == y))


def train_curve(rule: UpdateRule, spec: Spec, params, data: Split, lr: float, epochs: int,
                batch: int, seed: int, dataset: str, on_epoch=lambda: None) -> Curve:
    """Mini-batch training with ``rule.step`` (``bpcheck.core.training.training_curve``): the loss
    and both accuracies after each epoch."""
    Y = split_targets(spec, data)
    state = {"params": params}

    def step(chosen: np.ndarray, epoch: int, index: int) -> None:
        state["params"] = rule.step(spec, state["params"], data.X_train[:, chosen], Y[..., chosen], lr)
        if not finite_params(state["params"]):
            raise network.Overflow("the step")

    def scores() -> tuple[float, float, float]:
        now = state["params"]
        return (network.loss(spec, now, data.X_train, Y), accuracy(spec, now, data.X_train, data.y_train),
                accuracy(spec, now, data.X_test, data.y_test))

    return training_curve(Curve(dataset, rule.name, lr), data.X_train.shape[1], epochs, batch, seed, step,
                          scores, on_epoch)


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
