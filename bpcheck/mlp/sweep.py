"""How a rule's discrepancy varies with dtype, depth, width, batch and η (``bpcheck sweep``).

From a base network (4-8-3 sigmoid, ½-squared error summed, bias node, batch 16, η = 0.1,
float64), one setting changes at a time; each point is the median and the largest, over a few
random problems, of the rule's relative error max_θ max|D − G| / max|G|, D its directions and
G torch's gradient. Settings the rule is not defined on are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpcheck.core.datasets import random_data
from manual.initialisers import truncated_normal
from manual.rules import UpdateRule
from manual.spec import Spec
from reference import WITNESSES

BASE = {"dtype": "float64", "depth": 1, "width": 8, "batch": 16, "lr": 0.1}
AXES = {"dtype": ["float32", "float64"], "depth": [1, 2, 3, 4], "width": [2, 4, 8, 16, 32],
        "batch": [1, 4, 16, 64], "lr": [1e-3, 1e-2, 1e-1, 1.0]}


@dataclass
class Point:
    axis: str
    value: object
    median: float
    largest: float
    problems: int


def relative_error(rule: UpdateRule, setting: dict, seed: int) -> float | None:
    """The rule's relative error on one random problem of this setting (None: not defined)."""
    hidden = (setting["width"],) * setting["depth"]
    spec = Spec((4, *hidden, 3), ("sigmoid",) * (setting["depth"] + 1), dtype=setting["dtype"])
    if rule.unsupported_reason(spec):
        return None
    rng = np.random.default_rng(seed)
    X, Y = random_data(spec, setting["batch"], rng)
    params = truncated_normal(spec, rng)
    D = rule.directions(spec, params, X, Y, setting["lr"])
    G = WITNESSES["torch"].gradients(spec, {k: np.asarray(v, np.float64) for k, v in params.items()},
                            X.astype(np.float64), Y.astype(np.float64))
    return max(float(np.abs(np.asarray(D[k], np.float64) - G[k]).max() / np.abs(G[k]).max()) for k in G)


def sweep(rule: UpdateRule, repeats: int = 5, on_point=lambda: None) -> list[Point]:
    points = []
    for axis, values in AXES.items():
        for value in values:
            errors = [e for seed in range(repeats)
                      if (e := relative_error(rule, {**BASE, axis: value}, seed)) is not None]
            on_point()
            if errors:
                points.append(Point(axis, value, float(np.median(errors)), max(errors), len(errors)))
    return points
