"""One evaluation point: a network, its parameters, a batch and a learning rate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpcheck.core.problem import fingerprint
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
        """Validated; array-likes (nested lists) are kept as the arrays validation made of them:
        that is lossless (a list is accepted only where its dtype is the spec's) and what
        ``manual``'s functions do with the same arguments. The caller's own arrays are kept as
        they are (no copy), and nothing of theirs is changed."""
        if not isinstance(self.spec, Spec):
            raise TypeError(f"spec={self.spec!r:.80} is a {type(self.spec).__name__}; expected a "
                            "Spec (manual.spec.Spec)")
        params, X, Y = check_problem(self.spec, self.params, self.X, self.Y)
        check_learning_rate(self.lr)
        if any(params[name] is not value for name, value in self.params.items()):
            object.__setattr__(self, "params", params)
        object.__setattr__(self, "X", X)  # the same object when it was an array already
        object.__setattr__(self, "Y", Y)

    def fingerprint(self) -> str:
        """A digest of everything a witness's answer depends on (spec, every array's dtype,
        shape and bytes, η): equal for equal problems, and cheap (one pass over the bytes)."""
        return fingerprint(repr(self.spec), self.lr, self.params, {"X": self.X, "Y": self.Y})

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
