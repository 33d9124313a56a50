"""One draw of a layer with several named inputs (``bpcheck.user.inputs_check``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class InputsProblem:
    """One draw: the inputs by your names and parameters by the kind's, in bpcheck's layouts
    ((N, T, D); W (out, in)), float64 values the dtype holds exactly, and dout."""

    text: str
    dtype: str
    arrays: dict[str, np.ndarray]
    params: dict[str, np.ndarray]
    dout: np.ndarray
    yours: dict = field(default_factory=dict)

    def describe(self) -> str:
        shapes = ", ".join(f"{n} {a.shape}" for n, a in self.arrays.items())
        return f"{self.text} on {shapes}"
