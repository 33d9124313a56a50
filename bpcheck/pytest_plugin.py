"""bpcheck's pytest plugin (entry point ``pytest11``): a test of your own rule in a few lines.

    from my_network import backprop_rule          # a bpcheck.UserRule

    def test_backprop_matches_autodiff(bpcheck):
        bpcheck.assert_agrees(backprop_rule)

``bpcheck.assert_agrees(rule, **pins)`` fails the test with the report — the smallest network
where the rule is wrong, in your conventions, and the diagnosis — unless the rule agrees with
every witness; ``bpcheck.check(rule, **pins)`` returns the ``CheckReport`` for your own
assertions. ``--bpcheck-examples`` and ``--bpcheck-seed`` set how many random networks and
which seed (defaults 100 and 0). The Hypothesis strategies behind it, ``bpcheck.specs`` and
``bpcheck.problems``, are public for properties of your own.
"""

from __future__ import annotations

from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bpcheck", "checking hand-written backpropagation")
    group.addoption("--bpcheck-examples", type=int, default=100, metavar="N",
                    help="random networks each bpcheck check tries (default 100)")
    group.addoption("--bpcheck-seed", type=int, default=0, metavar="S",
                    help="seed of bpcheck's random networks (default 0)")


class Checker:
    """What the ``bpcheck`` fixture gives a test."""

    def __init__(self, examples: int, seed: int) -> None:
        self.examples, self.seed = examples, seed

    def check(self, rule: Any, **pins: Any):
        """The ``CheckReport`` of ``rule`` (``bpcheck.check`` with this run's examples and seed;
        ``pins``: sizes, activations, loss, dtype, examples, seed)."""
        from bpcheck.user.checking import check
        options = {"examples": self.examples, "seed": self.seed} | pins
        return check(rule, **options)

    def assert_agrees(self, rule: Any, **pins: Any):
        """Fail the test with the report unless ``rule`` agrees with every witness."""
        report = self.check(rule, **pins)
        if not report.passed:
            pytest.fail(str(report), pytrace=False)
        return report


@pytest.fixture
def bpcheck(request: pytest.FixtureRequest) -> Checker:
    """Checks your UserRule, UserActivation or UserLoss against torch, jax and finite differences."""
    config = request.config
    return Checker(config.getoption("--bpcheck-examples"), config.getoption("--bpcheck-seed"))
