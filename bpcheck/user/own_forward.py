r"""A user's layer given as its NumPy pair alone — no torch, no jax, no xp forward: its backward is
checked against finite differences of its own forward only, the row ``OWN_FORWARD`` of
``bpcheck.layers.compare`` (the same ``differences`` of the same ``StackRule.own_loss``), with no
autodiff witness behind it. So a forward that computes the wrong function, with a backward
consistent with it, is not caught, and every report says so (``OWN_ONLY``).

Hypothesis draws the layer alone and inside small networks (``bpcheck.user.layer_check``'s
draws), in float64 only: a float32 backward's rounding is measured against torch's float32
answer, which there is none of here. On each draw every gradient g (the parameters and x) of the
derived network is compared with D_h, the central differences of the network's loss by its own
forward (``bpcheck.layers.compare.differences``: on every entry, up to ``ENTRIES`` drawn at
random), entry by entry:

.. math::
    |g_i − D_{h,i}| ≤ e_i = 8·\hat ε_i + 8·u·m·\max_j |D_{h,j}|

with ε̂_i the differences' own error estimate (Richardson's truncation estimate plus their
rounding; ∞ where it breaks its premise: ``bpcheck.core.tolerances.finite_difference_allowance``)
and the second term the float64 backward's own rounding (m = ``stack_rounding_steps``). A draw
*agrees* only where the allowance could have caught a real error — every e_i finite and
max e_i ≤ INFORMATIVE·max|D_h| (``bpcheck.core.tolerances.conclusive``) — it DIFFERS where one
entry is beyond e_i, and is otherwise left out as inconclusive (a kink within h, a saturated
layer: the estimate is too large to judge), counted by its reason as for the other checks.
"""

from __future__ import annotations

import numpy as np

from bpcheck.core.compare import Row, RuleReport, row_verdict
from bpcheck.core.metrics import discrepancy
from bpcheck.core.search import search
from bpcheck.core.tolerances import SAFETY, finite_difference_allowance, underflow_floor, unit_roundoff
from bpcheck.core.verdicts import AGREES, DIFFERS, INCONCLUSIVE, RAISED, WRONG
from bpcheck.layers.allowances import stack_rounding_steps
from bpcheck.layers.compare import OWN_FORWARD, StackRule, differences
from bpcheck.layers.problem import StackProblem
from bpcheck.user.layer import UserLayer
from bpcheck.user.layer_draws import Draw, drawn_problem, draws, settled
from bpcheck.user.layer_report import layer_message
from bpcheck.user.report import CheckReport
from bpcheck.user.tables import MANUAL_LAYERS

#: What every report of such a check says.
OWN_ONLY = ("checked against finite differences of your own forward only; no autodiff witness "
            "(a forward that computes the wrong function is not caught: write it once as "
            "forward(x, params, xp) for torch and jax to check it)")
#: Entries differenced per draw, at most (drawn at random with seed 0); NumPy runs one perturbed
#: copy at a time, four calls per entry.
ENTRIES = 256


def compare_own_forward(rule: StackRule, problem: StackProblem) -> RuleReport:
    """A row per gradient (the parameters and x): the rule's float64 backward against finite
    differences of its own forward (the module docstring)."""
    grads = rule.evaluate(problem)[0]
    fd, errors = differences(rule.own_loss(problem), problem, ENTRIES)
    steps = stack_rounding_steps(problem.stack, problem.n_samples)
    floor = underflow_floor(steps, "float64")
    report = RuleReport(rule)
    for name, g in grads.items():
        checked = np.isfinite(fd[name])
        scale = float(np.max(np.abs(fd[name]), where=checked, initial=0.0))
        rounding = SAFETY * unit_roundoff("float64") * steps * scale + floor
        allowed = finite_difference_allowance(errors[name], np.full(g.shape, rounding), fd[name], scale)
        g = np.asarray(g, np.float64)
        report.rows.append(_row(rule.name, name, g, fd[name], allowed, checked, floor))
    return report


def _row(rule: str, name: str, g: np.ndarray, fd: np.ndarray, allowed: np.ndarray, checked: np.ndarray,
         floor: float) -> Row:
    """The row of one gradient: DIFFERS where an entry is beyond its allowance, AGREES where
    the allowances are informative (``conclusive``), else INCONCLUSIVE."""
    verdict, tolerance = row_verdict(g[checked], fd[checked], allowed[checked], floor)
    filled = np.where(checked, fd, g)  # entries not differenced count as no error
    return Row(rule, "gradient", name, g.shape, OWN_FORWARD, discrepancy(g, filled), tolerance, verdict,
               int(checked.sum()))


def check_own_forward(layer: UserLayer, examples: int = 50, seed: int = 0) -> CheckReport:
    """``check_layer`` for a layer with neither torch, jax nor xp forward: its backward against
    finite differences of its forward only (the module docstring). Verdicts agrees, WRONG,
    RAISED or NOT VERIFIED, the message saying what was (not) checked."""
    found = CheckReport(layer.name, AGREES, 0, "", kind="layer")
    last: dict = {}
    with MANUAL_LAYERS.scoped(layer):  # no witness: torch and jax need not load
        rule = StackRule(layer.name, f"your layer {layer.name} among the derived layers")

        def judge(drawn: Draw, discard) -> RuleReport:
            problem = drawn_problem(drawn, discard)
            report = compare_own_forward(rule, problem)
            if report.verdict == INCONCLUSIVE:
                discard("inconclusive: the finite differences' error estimate is too large to judge "
                        "(a kink within their step, or a saturated unit)")
            if report.verdict == DIFFERS:
                last.update(problem=problem, report=report)
            return report

        verdict = search(layer.name, draws(layer, "float64"), judge, examples, seed, keep_errors=True,
                         witnesses=False)
    if settled(found, verdict, last):
        found.verdict, found.rows = WRONG, [row for row in found.comparison.rows if row.differs]
    found.message = own_message(found)
    return found


def own_message(report: CheckReport) -> str:
    """The verdict and what it means, then ``OWN_ONLY`` (not after what your code raised)."""
    if report.verdict == RAISED:
        return layer_message(report)
    if report.verdict != AGREES:
        return f"{layer_message(report)} — {OWN_ONLY}"
    skipped = sum(report.discarded.values())
    reasons = "; ".join(f"{n} {why}" for why, n in report.discarded.most_common())
    more = f" ({skipped} more drawn and left out: {reasons})" if skipped else ""
    return (f"{report.rule}: agrees with finite differences of your own forward on {report.examples} "
            f"random networks (alone and inside other layers), float64 — {OWN_ONLY}{more}")
