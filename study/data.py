"""Problems to compare rules on: the seed program's iris setting, or random data."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_iris

from manual.spec import LOSS_TARGETS, Spec, data_shape

IRIS_FEATURES, IRIS_CLASSES = 4, 3


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(N,) integer labels → (C, N) one-hot columns (the seed's target layout)."""
    return (np.arange(n_classes)[:, None] == labels[None, :]).astype(np.float64)


def iris_split(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The program's training set: iris shuffled, the first 2/3 (100 samples); X is (N, 4)."""
    iris = load_iris()  # scikit-learn's bundled copy: nothing is downloaded
    order = rng.permutation(len(iris.target))
    n_train = 2 * len(order) // 3
    return iris.data[order[:n_train]], iris.target[order[:n_train]]


def seed_hidden_width(n_train: int, rng: np.random.Generator) -> int:
    """The program's hidden width int(N / (U(2, 10)·(F + C))), at least 1."""
    return max(1, int(n_train / (rng.uniform(2, 10) * (IRIS_FEATURES + IRIS_CLASSES))))


def iris_data(spec: Spec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Iris training inputs and one-hot targets in the spec's layout and dtype."""
    if (spec.sizes[0], spec.sizes[-1]) != (IRIS_FEATURES, IRIS_CLASSES):
        raise ValueError(f"iris needs sizes (4, …, 3); got sizes={spec.sizes} (use --data random)")
    features, labels = iris_split(rng)
    return _in_layout(spec, features.T, labels)


def _in_layout(spec: Spec, X_cols: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """X and targets for the spec's loss (labels, or one-hot columns), layout and dtype."""
    X = (X_cols if spec.layout == "cols" else X_cols.T).astype(spec.dtype)
    if LOSS_TARGETS[spec.loss] == "labels":
        return X, labels.astype(np.int64)
    Y = one_hot(labels, spec.sizes[-1])
    return X, (Y if spec.layout == "cols" else Y.T).astype(spec.dtype)


def random_data(spec: Spec, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal inputs; targets uniform in [0, 1], or random class labels."""
    X = rng.standard_normal((spec.sizes[0], n_samples))
    if LOSS_TARGETS[spec.loss] == "labels":
        return _in_layout(spec, X, rng.integers(0, spec.sizes[-1], n_samples))
    Y = rng.uniform(size=data_shape(spec, spec.sizes[-1], n_samples))
    return (X if spec.layout == "cols" else X.T).astype(spec.dtype), Y.astype(spec.dtype)
