"""How a rule's discrepancy varies with the settings of its problem (``bpcheck sweep``), for
any family: from a base setting, one setting changes at a time; each point is the median and
the largest, over a few random problems, of the rule's relative error

    max_θ max_i |D_i − G_i| / max_i |G_i|,

D the rule's gradient and G torch's (for a network of layers over the largest |G| of any
parameter). The family supplies the axes and the error of one
problem (``bpcheck.mlp.sweep``, ``bpcheck.layers.sweep``); settings it leaves undefined (None)
are left out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Setting = dict[str, object]


@dataclass(frozen=True)
class Point:
    """One setting of one axis: the median and largest relative error over ``problems``."""

    axis: str
    value: object
    median: float
    largest: float
    problems: int


def relative_error(directions: dict[str, np.ndarray], truth: dict[str, np.ndarray],
                   one_scale: bool = False) -> float:
    """max over parameters θ of max|D_θ − G_θ| / max|G_θ| (D in float64; 0/0 counts as 0, x/0 as
    inf); with ``one_scale``, over max|G| of every parameter instead, for networks where a
    parameter's true gradient vanishes (a bias before a batch norm: its G is rounding)."""
    def largest(array) -> float:
        return float(np.max(np.abs(array), initial=0.0))

    whole = max(map(largest, truth.values()), default=0.0)
    worst = 0.0
    for name, g in truth.items():
        gap, scale = largest(np.asarray(directions[name], np.float64) - g), whole if one_scale else largest(g)
        worst = max(worst, gap / scale if scale else (0.0 if gap == 0 else np.inf))
    return worst


def sweep(axes: dict[str, list], base: Setting, error: Callable[[Setting, int], float | None],
          repeats: int = 5, on_point: Callable[[], None] = lambda: None) -> list[Point]:
    """A ``Point`` per axis value where ``error(setting, seed)`` is defined for some of the
    ``repeats`` seeds, the other settings at ``base``; ``on_point()`` after each value."""
    points = []
    for axis, values in axes.items():
        for value in values:
            errors = [e for seed in range(repeats) if (e := error({**base, axis: value}, seed)) is not None]
            on_point()
            if errors:
                points.append(Point(axis, value, float(np.median(errors)), max(errors), len(errors)))
    return points
