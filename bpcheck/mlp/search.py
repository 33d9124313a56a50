"""The MLP family's hunt: random problems searched (``bpcheck.core.search.search``) for one where
a rule disagrees with a witness."""

from __future__ import annotations

from collections.abc import Callable

from bpcheck.core.compare import RuleReport
from bpcheck.core.search import Verdict, search
from bpcheck.core.verdicts import INCONCLUSIVE
from bpcheck.mlp.compare import ask_witnesses, compare_rule
from bpcheck.mlp.problem import Problem
from bpcheck.mlp.strategies import away_from_kinks
from manual.rules import UpdateRule


def hunt(rule: UpdateRule, strategy, max_examples: int, seed: int = 0,
         finite_differences: bool | str = True, keep_errors: bool = False,
         observe: Callable[[Problem], None] | None = None) -> Verdict:
    """Search random problems for one where ``rule`` disagrees with a witness; Hypothesis then
    shrinks it, and the verdict keeps the minimal problem it ends with and its report. With
    ``keep_errors``, an exception from the rule's code is a failure too, shrunk and kept
    (``Verdict.raised``); otherwise it propagates. ``observe`` sees every problem checked."""

    def judge(problem: Problem, discard: Callable[[str], None]) -> RuleReport:
        if not away_from_kinks(problem):
            discard("too near a kink")
        reason = rule.unsupported_reason(problem.spec)
        if reason is not None:
            discard(f"unsupported ({reason})")
        # the rule's own (cheap) code first: if it raises, Hypothesis shrinks without asking
        # the witnesses (and compiling jax) for every smaller network it tries
        evaluated = rule.directions_and_step(problem.spec, problem.params, problem.X, problem.Y,
                                             problem.lr)
        truth = ask_witnesses(problem, finite_differences)
        report = compare_rule(rule, problem, truth, evaluated)
        if report.verdict == INCONCLUSIVE:  # nothing to learn from this draw
            discard("inconclusive (too ill-conditioned to tell a wrong rule from rounding)"
                    if truth.flows_back else "inconclusive (nothing flows back: every gradient is 0)")
        return report

    return search(rule.name, strategy, judge, max_examples, seed, keep_errors, observe)
