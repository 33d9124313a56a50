"""The registry of update rules under test: each is compared with every witness.

A rule turns (spec, params, X, Y, η) into

* ``directions`` D: what it subtracts, θ ← θ − η·D, i.e. the gradient it claims; and
* ``step``: the parameters after one update (new arrays; inputs are never modified).

``claims_correct`` says whether the rule is meant to equal autodiff: the suite requires
agreement from those and *disagreement* from the known-wrong ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from manual import network, seed
from manual.spec import Params, Spec

Update = Callable[[Spec, Params, np.ndarray, np.ndarray, float], Params]


@dataclass(frozen=True)
class UpdateRule:
    """A named update rule and what it claims."""

    name: str
    summary: str
    claims_correct: bool
    directions: Update
    step: Update
    unsupported_reason: Callable[[Spec], str | None] = lambda spec: None


RULES: dict[str, UpdateRule] = {}


def register(rule: UpdateRule) -> UpdateRule:
    """Add a rule to the registry the CLI and the tests iterate."""
    RULES[rule.name] = rule
    return rule


register(UpdateRule(
    name="derived",
    summary="hand-derived δ recursion; SGD step with every gradient at the old weights",
    claims_correct=True,
    directions=lambda spec, params, X, Y, lr: network.gradients(spec, params, X, Y),
    step=network.sgd_step,
))

register(UpdateRule(
    name="seed-literal",
    summary="the seed's code: output weights updated first, hidden error from σ_o − ŷ",
    claims_correct=False,
    directions=seed.seed_directions,
    step=seed.seed_step,
    unsupported_reason=seed.unsupported_reason,
))
