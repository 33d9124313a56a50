"""What every family's training run records: a ``Curve`` per dataset, rule and learning rate."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
