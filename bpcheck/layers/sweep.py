"""The sweep of a network of layers (``bpcheck sweep RULE --network LAYERS``; the loop:
``bpcheck.core.sweep``): from the network in float64 with 8 samples of inputs at scale 1, the
dtype, batch or the inputs' scale changes (x ~ N(0, scale²), ``random_problem``); the error is
the rule's gradients (``StackRule.evaluate``) against torch's, parameters and input alike,
over the largest of torch's (a bias before a batch norm has a true gradient of 0)."""

from __future__ import annotations

from dataclasses import replace

from bpcheck.core.sweep import Point, Setting, relative_error
from bpcheck.core.sweep import sweep as sweep_axes
from bpcheck.layers.compare import StackRule, witness
from bpcheck.layers.problem import random_problem
from manual.stack import Stack

BASE = {"dtype": "float64", "batch": 8, "scale": 1.0}
AXES = {"dtype": ["float32", "float64"], "batch": [2, 4, 16, 64], "scale": [0.1, 1.0, 10.0]}


def rule_error(rule: StackRule, stack: Stack, setting: Setting, seed: int) -> float | None:
    """The rule's relative error on one random problem of ``stack`` in this setting (None: the
    network cannot be drawn there, e.g. a batch norm over too few values)."""
    try:
        problem = random_problem(replace(stack, dtype=setting["dtype"]), setting["batch"], seed,
                                 scale=setting["scale"])
    except ValueError:
        return None
    gradients = rule.evaluate(problem)[0]
    truth = witness("torch").gradients(*problem.in_float64().arrays())
    return relative_error(gradients, truth, one_scale=True)


def sweep(rule: StackRule, stack: Stack, repeats: int = 5, on_point=lambda: None) -> list[Point]:
    """The rule's ``Point`` for every value of every axis (``bpcheck.core.sweep.sweep``)."""
    return sweep_axes(AXES, BASE, lambda setting, seed: rule_error(rule, stack, setting, seed),
                      repeats, on_point)
