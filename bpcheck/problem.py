"""One evaluation point: a network, its parameters, a batch and a learning rate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manual.spec import Params, Spec, check_learning_rate, check_problem


@dataclass(frozen=True)
class Problem:
    """One evaluation point: a network, its parameters, a batch and a learning rate."""

    spec: Spec
    params: Params
    X: np.ndarray
    Y: np.ndarray
    lr: float

    def __post_init__(self) -> None:
        check_problem(self.spec, self.params, self.X, self.Y)
        check_learning_rate(self.lr)

    def arrays(self) -> tuple[Spec, Params, np.ndarray, np.ndarray]:
        """(spec, params, X, Y): what a witness's gradients take."""
        return self.spec, self.params, self.X, self.Y

    @property
    def n_params(self) -> int:
        return sum(int(np.size(value)) for value in self.params.values())

    @property
    def n_samples(self) -> int:
        return self.X.shape[1] if self.spec.layout == "cols" else self.X.shape[0]

    def in_float64(self) -> Problem:
        """The same values, exactly, in float64: what every witness computes with. A float64
        problem is already that (validation guarantees its arrays' dtype), so it is returned as is."""
        if self.spec.dtype == "float64":
            return self
        cast = {name: np.asarray(p, dtype=np.float64) for name, p in self.params.items()}
        Y = self.Y.astype(np.float64) if np.issubdtype(self.Y.dtype, np.floating) else self.Y
        return Problem(self.spec.replace(dtype="float64"), cast, self.X.astype(np.float64), Y, self.lr)
