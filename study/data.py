"""Problems to compare rules on: the seed program's iris setting, or random data."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_iris

from manual.spec import Spec, data_shape

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
    X, Y = features.T, one_hot(labels, IRIS_CLASSES)
    if spec.layout == "rows":
        X, Y = X.T, Y.T
    return X.astype(spec.dtype), Y.astype(spec.dtype)


def random_data(spec: Spec, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal inputs and targets uniform in [0, 1], in the spec's layout and dtype."""
    X = rng.standard_normal(data_shape(spec, spec.sizes[0], n_samples))
    Y = rng.uniform(size=data_shape(spec, spec.sizes[-1], n_samples))
    return X.astype(spec.dtype), Y.astype(spec.dtype)
