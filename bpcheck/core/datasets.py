"""Data: the seed program's iris setting, random data, and the training splits of iris and
digits — scikit-learn's bundled copies, nothing downloaded."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from manual.losses import one_hot
from manual.spec import Spec, data_shape, target_kind

IRIS_FEATURES, IRIS_CLASSES = 4, 3


def iris_split(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The program's training set: iris shuffled, the first 2/3 (100 samples); X is (N, 4)."""
    data, target = load("iris")
    order = rng.permutation(len(target))
    n_train = 2 * len(order) // 3
    return data[order[:n_train]], target[order[:n_train]]


def seed_program_hidden_width(n_train: int, rng: np.random.Generator) -> int:
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
    if target_kind(spec.loss) == "labels":
        return X, labels.astype(np.int64)
    Y = one_hot(labels, spec.sizes[-1], np.float64)
    return X, (Y if spec.layout == "cols" else Y.T).astype(spec.dtype)


def random_data(spec: Spec, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal inputs; targets uniform in [0, 1] (over their sample's sum for
    distributions), or random classes (labels, or one-hot)."""
    X = rng.standard_normal((spec.sizes[0], n_samples))
    if target_kind(spec.loss) in ("labels", "one_hot"):
        return _in_layout(spec, X, rng.integers(0, spec.sizes[-1], n_samples))
    Y = rng.uniform(size=data_shape(spec, spec.sizes[-1], n_samples))
    if target_kind(spec.loss) == "distributions":  # each sample's summing to one
        Y = Y / Y.sum(axis=0 if spec.layout == "cols" else -1, keepdims=True)
    return (X if spec.layout == "cols" else X.T).astype(spec.dtype), Y.astype(spec.dtype)


#: name → (scikit-learn's loader, feature scale): digits' pixels are 0–16, iris is used raw,
#: as in the seed.
DATASETS = {"iris": ("load_iris", 1.0), "digits": ("load_digits", 16.0)}


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, F), class labels (N,)) of scikit-learn's bundled copy of dataset ``name``;
    nothing is downloaded. Iris is read straight from scikit-learn's file (``bundled_iris``);
    otherwise scikit-learn is imported on first use, not with this module."""
    if name == "iris" and (iris := bundled_iris()) is not None:
        return iris
    bunch = getattr(importlib.import_module("sklearn.datasets"), DATASETS[name][0])()
    return bunch.data, bunch.target


def bundled_iris() -> tuple[np.ndarray, np.ndarray] | None:
    """``sklearn/datasets/data/iris.csv`` as ``load_iris`` reads it — a header "N,F,names…",
    then F features and the class on each row — found without importing scikit-learn (0.6 s of
    the default report); None if the file is not there or not in that form."""
    try:
        spec = importlib.util.find_spec("sklearn")
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "iris.csv"
        n_samples, n_features = (int(n) for n in path.read_text("utf-8").split(",", 2)[:2])
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except (OSError, ValueError):
        return None
    labels = table[:, -1]
    if table.shape != (n_samples, n_features + 1) or not np.array_equal(labels, np.round(labels)):
        return None
    return table[:, :-1], labels.astype(int)


@dataclass
class Split:
    X_train: np.ndarray  # (F, N) columns, as the seed's program keeps them
    Y_train: np.ndarray  # (C, N) one-hot
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def features(self) -> int:
        return self.X_train.shape[0]

    @property
    def classes(self) -> int:
        return self.Y_train.shape[0]


def split(name: str, seed: int) -> Split:
    """The dataset shuffled by ``seed``, first 2/3 for training."""
    (data, target), scale = load(name), DATASETS[name][1]
    order = np.random.default_rng(seed).permutation(len(target))
    X, y = data[order] / scale, target[order]
    n = 2 * len(y) // 3
    classes = int(y.max()) + 1
    return Split(X[:n].T, one_hot(y[:n], classes, np.float64), y[:n], X[n:].T, y[n:])
