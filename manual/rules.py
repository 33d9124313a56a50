"""The registry of update rules under test: each is compared with every witness.

A rule turns (spec, params, X, Y, η) into

* ``directions`` D: what it subtracts, θ ← θ − η·D, i.e. the gradient it claims; and
* ``step``: the parameters after one update (new arrays; inputs are never modified);

and ``directions_and_step`` gives both from one evaluation where the rule can (``both``).

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
Both = Callable[[Spec, Params, np.ndarray, np.ndarray, float], tuple[Params, Params]]


@dataclass(frozen=True)
class UpdateRule:
    """A named update rule and what it claims."""

    name: str
    summary: str
    claims_correct: bool
    directions: Update
    step: Update
    unsupported_reason: Callable[[Spec], str | None] = lambda spec: None
    both: Both | None = None  # (directions, step) from one evaluation
    #: the directions are (θ − θ′)/η of the rule's step, so they carry θ′'s rounding over η
    directions_from_step: bool = False

    def directions_and_step(self, spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray,
                            lr: float) -> tuple[Params, Params]:
        """(directions, parameters after the step), from one evaluation where the rule has one."""
        if self.both is not None:
            return self.both(spec, params, X, Y, lr)
        return self.directions(spec, params, X, Y, lr), self.step(spec, params, X, Y, lr)


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
    both=network.gradients_and_sgd_step,
))

register(UpdateRule(
    name="seed-literal",
    summary="the seed's code: output weights updated first, hidden error from σ_o − ŷ",
    claims_correct=False,
    directions=seed.seed_directions,
    step=seed.seed_step,
    unsupported_reason=seed.unsupported_reason,
    both=seed.seed_directions_and_step,
))
