"""When a user rule fails, was it only declared wrongly? The same code under each convention one
step away — the bias node at the other end of W, a bias of another shape, the weights the other
way round, the samples along the other axis, labels for one-hot targets — is compared again on
the failing network and on fresh draws of it; a declaration under which the code agrees with
every witness is said first.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bpcheck.core.verdicts import AGREES, DIFFERS
from bpcheck.mlp.compare import ask_witnesses, compare_rule
from bpcheck.mlp.problem import Problem
from bpcheck.user.rule import UserRule, resample

#: Each convention and the ones a slip most often swaps it with.
SWAPS = {
    "bias": {"node_last": ("node_first",), "node_first": ("node_last",),
             "vector": ("column", "row"), "column": ("row", "vector"), "row": ("column", "vector")},
    "weights": {"out_in": ("in_out",), "in_out": ("out_in",)},
    "data": {"samples_as_rows": ("samples_as_columns",), "samples_as_columns": ("samples_as_rows",)},
    "targets": {"labels": ("one_hot",), "one_hot": ("labels",)},
}


def better_declarations(rule: UserRule, problem: Problem | None, draws: int = 3) -> list[str]:
    """``field='value'`` for each one-step change of the rule's conventions under which its code
    differs from no witness on ``problem`` (re-laid out as needed) and ``draws`` fresh draws of
    it, and agrees on at least one (none without a network: nothing was drawn)."""
    found = []
    if problem is None:
        return found
    for name, swap in SWAPS.items():
        for other in swap.get(getattr(rule.conventions, name), ()):
            declared = replace(rule, conventions=replace(rule.conventions, **{name: other}))
            if _agrees(declared, _laid_out(problem, declared), draws):
                found.append(f"{name}={other!r}")
    return found


def _laid_out(problem: Problem, rule: UserRule) -> Problem:
    """The same numbers in the data layout the rule's conventions ask for."""
    layout = rule.conventions.layout
    if layout == problem.spec.layout:
        return problem
    Y = problem.Y if problem.Y.ndim == 1 else problem.Y.T.copy()
    return Problem(problem.spec.replace(layout=layout), problem.params, problem.X.T.copy(), Y, problem.lr)


def _agrees(rule: UserRule, problem: Problem, draws: int) -> bool:
    """Never DIFFERS, and agrees on at least one problem (a shrunk example can be too
    degenerate to settle anything)."""
    rng, update, settled = np.random.default_rng(1), rule.update_rule(), False
    for p in [problem, *(resample(rule, problem, rng) for _ in range(draws))]:
        try:
            verdict = compare_rule(update, p, ask_witnesses(p, finite_differences=False)).verdict
        except Exception:  # the code does not even run declared so
            return False
        if verdict == DIFFERS:
            return False
        settled = settled or verdict == AGREES
    return settled
