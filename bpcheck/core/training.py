"""The one training loop of every family, and what it records: a ``Curve`` per dataset, rule and
learning rate. Each family supplies its step and its scores (``bpcheck.mlp.train``,
``bpcheck.layers.train``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from manual.network import Overflow, quiet


@dataclass
class Curve:
    dataset: str
    rule: str
    lr: float
    loss: list[float] = field(default_factory=list)  # L on the training set, after each epoch
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    #: The epoch (from 1) in which a step or the loss overflowed the dtype; the lists end with
    #: the epoch before it. None: every epoch trained.
    diverged: int | None = None


def finite_params(params: dict) -> bool:
    """Whether every parameter entry is finite (a step that overflowed leaves inf or NaN)."""
    return all(np.isfinite(value).all() for value in params.values())


def training_curve(curve: Curve, n: int, epochs: int, batch: int, seed: int,
                   step: Callable[[np.ndarray, int, int], None],
                   scores: Callable[[], tuple[float, float, float]],
                   on_epoch: Callable[[], None] = lambda: None) -> Curve:
    """Mini-batch training of ``n`` samples: epoch e visits them in the order of
    permutation(seed + 1 + e), the same for every rule and learning rate, and calls
    ``step(chosen, epoch, index)`` for each batch (it raises ``Overflow`` where a step leaves
    a parameter not finite); after each epoch, ``scores()`` gives (loss, train accuracy, test
    accuracy). Where a step or the loss overflows, the curve stops: ``diverged`` is that epoch."""
    for epoch in range(epochs):
        order = np.random.default_rng(seed + 1 + epoch).permutation(n)
        try:
            with quiet():  # overflow is checked for (finite parameters and loss), not warned about
                for index, start in enumerate(range(0, n, batch)):
                    step(order[start:start + batch], epoch, index)
                loss, train_accuracy, test_accuracy = scores()
                if not np.isfinite(loss):
                    raise Overflow("the loss")
        except FloatingPointError:  # a value outgrew the dtype: the curve ends here
            curve.diverged = epoch + 1
            return curve
        curve.loss.append(loss)
        curve.train_accuracy.append(train_accuracy)
        curve.test_accuracy.append(test_accuracy)
        on_epoch()
    return curve
