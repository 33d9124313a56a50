"""The random networks a ``UserRule`` is checked on: Hypothesis draws them (its import is kept
out of ``bpcheck.user.rule``, so that ``bpcheck verify`` imports your module, which imports
that, in well under a second)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bpcheck.mlp.problem import Problem
from bpcheck.mlp.strategies import problems, specs
from bpcheck.user.rule import UserRule
from manual.losses import one_hot
from manual.spec import LOSSES


@st.composite
def user_problems(draw, rule: UserRule, dtype: str = "float64") -> Problem:
    """Random networks of the model the rule claims, in bpcheck's conventions (the layout and
    bias style the user's conventions map to), with class-label targets where the user's are."""
    low, high = rule.depths()
    depth = draw(st.integers(low, high))
    spec = draw(specs(rule.activations_for(depth), loss=rule.loss, bias=rule.conventions.bias_style,
                      layout=rule.conventions.layout, dtype=dtype, reduction=rule.reduction,
                      l2=float(rule.l2), l2_biases=rule.l2_biases))
    if rule.sizes is not None:
        spec = spec.replace(sizes=tuple(rule.sizes))
    problem = draw(problems(st.just(spec)))
    if rule.computes != "gradients":  # θ − θ′ must stand well above θ's rounding: η not tiny
        problem = replace(problem, lr=draw(st.floats(0.05, 1.0)))
    if rule.conventions.targets == "as_loss" or LOSSES[spec.loss].targets == "labels":
        return problem
    labels = draw(hnp.arrays(np.int64, (problem.n_samples,), elements=st.integers(0, spec.sizes[-1] - 1)))
    Y = one_hot(labels, spec.sizes[-1], np.dtype(dtype))
    return Problem(spec, problem.params, problem.X, Y if spec.layout == "cols" else Y.T, problem.lr)
