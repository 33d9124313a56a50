"""The MLP family's sweep (``bpcheck sweep RULE``, the loop: ``bpcheck.core.sweep``): from a
base network (4-8-3 sigmoid, ½-squared error summed, bias node, batch 16, η = 0.1, float64),
the dtype, depth, width, batch or η changes; the error is the rule's directions against torch's
gradient. Settings the rule is not defined on are left out."""

from __future__ import annotations

import numpy as np

from bpcheck.core.datasets import random_data
from bpcheck.core.sweep import Point, Setting, relative_error
from bpcheck.core.sweep import sweep as sweep_axes
from manual.initialisers import truncated_normal
from manual.rules import UpdateRule
from manual.spec import Spec
from reference import WITNESSES

BASE = {"dtype": "float64", "depth": 1, "width": 8, "batch": 16, "lr": 0.1}
AXES = {"dtype": ["float32", "float64"], "depth": [1, 2, 3, 4], "width": [2, 4, 8, 16, 32],
        "batch": [1, 4, 16, 64], "lr": [1e-3, 1e-2, 1e-1, 1.0]}


def rule_error(rule: UpdateRule, setting: Setting, seed: int) -> float | None:
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
    return relative_error(D, G)


def sweep(rule: UpdateRule, repeats: int = 5, on_point=lambda: None) -> list[Point]:
    """The rule's ``Point`` for every value of every axis (``bpcheck.core.sweep.sweep``)."""
    return sweep_axes(AXES, BASE, lambda setting, seed: rule_error(rule, setting, seed), repeats, on_point)
