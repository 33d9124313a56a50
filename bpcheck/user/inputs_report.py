"""The search and the report of a layer with several named inputs (``bpcheck.user.inputs_check``):
Hypothesis draws, the first draw where a row differs is shrunk, and the report names each input's
and parameter's gradient by your name (``dk``, ``Wv``)."""

from __future__ import annotations

from dataclasses import dataclass

from bpcheck.core.compare import RuleReport
from bpcheck.core.search import search
from bpcheck.core.user_code import BadResult, user_frame
from bpcheck.core.verdicts import AGREES, DIFFERS, INCONCLUSIVE, NOT_VERIFIED, RAISED, WRONG
from bpcheck.user.inputs_check import OWN_FORWARD, compare_inputs, inputs_problems
from bpcheck.user.inputs_problem import InputsProblem
from bpcheck.user.inputs_witnesses import ZERO
from bpcheck.user.layouts import DATA, to_user
from bpcheck.user.like import KEY_BIAS
from bpcheck.user.like_inputs import roles
from bpcheck.user.like_pair import theirs
from bpcheck.user.report import CheckReport


@dataclass(frozen=True)
class _Rule:
    name: str
    claims_correct: bool = True


def check_inputs(layer, examples: int = 50, seed: int = 0) -> CheckReport:
    """Search ``examples`` draws of the inputs and parameters for one where your layer differs
    from torch, jax or finite differences of its forward; shrink it. Verdicts agrees, WRONG,
    RAISED or NOT VERIFIED."""
    like = layer.declared
    found = CheckReport(layer.name, AGREES, 0, "", kind="layer", like=like.text)
    rule, last = _Rule(layer.name), {}

    def judge(problem: InputsProblem, discard) -> RuleReport:
        report = compare_inputs(layer, problem, rule)
        if report.verdict == INCONCLUSIVE:
            discard("inconclusive: a gradient rounding decides (a saturated softmax, or float32 "
                    "lost an entry)")
        if report.verdict == DIFFERS:
            last.update(problem=problem, report=report)
        return report

    verdict = search(layer.name, inputs_problems(layer), judge, examples, seed, keep_errors=True)
    found.examples, found.discarded = verdict.examples, verdict.discarded
    if verdict.raised is not None:
        found.verdict, found.error, found.part = RAISED, verdict.raised, verdict.part
        found.counterexample = verdict.raised_on
    elif verdict.failure is not None:
        found.verdict, found.counterexample, found.comparison = WRONG, last["problem"], last["report"]
        found.rows = [row for row in found.comparison.rows if row.differs]
        found.yours = yours(like, found.counterexample)
    elif not found.examples:
        found.verdict = NOT_VERIFIED
    found.message = inputs_message(found, like)
    return found


def yours(like, problem: InputsProblem) -> dict:
    """The draw's inputs and parameters as your code gets them (your names and layouts)."""
    layouts = dict(zip(like.inputs, like.inputs_layout, strict=True))
    return ({k: to_user(a, DATA[2], layouts[k]) for k, a in problem.arrays.items()}
            | theirs(like, problem.params, 2, problem.dout.shape[0]))


def _inputs_words(like) -> str:
    q, k, v = roles(like.inputs)
    if q == k:  # one input
        return f"{q} (N, T, D) as query, key and value"
    kv = f"{k} (N, Tk, D) as key and value" if k == v else f"{k}, {v} (N, Tk, D) as key, value"
    return f"{q} (N, Tq, D) as query, {kv}"


def inputs_message(report: CheckReport, like) -> str:
    """One paragraph: the verdict and what it means, each gradient under your name."""
    name = report.rule
    if report.verdict == AGREES:
        skipped = sum(report.discarded.values())
        reasons = "; ".join(f"{n} {why}" for why, n in report.discarded.most_common())
        more = f" ({skipped} more drawn and left out: {reasons})" if skipped else ""
        key_bias = like.names.get(KEY_BIAS)
        held = f"; your {key_bias}'s held to exactly 0 (the softmax removes a key bias)" if key_bias else ""
        return (f"{name}: agrees with torch and jax on {report.examples} random draws of {like.text} "
                f"on {_inputs_words(like)}, float64 and float32: the gradient of each input and "
                f"parameter{held}, and the output (finite differences of your forward are taken "
                f"where they differ){more}")
    if report.verdict == NOT_VERIFIED:
        reasons = "; ".join(f"{n} {why}" for why, n in report.discarded.most_common()) or "none drawn"
        return f"{name}: NOT VERIFIED — no draw could be checked ({reasons})"
    if report.verdict == RAISED and isinstance(report.error, BadResult):
        return f"{name}: your code returned the wrong thing: {report.error}"
    if report.verdict == RAISED:
        return f"{name}: your {report.part or 'code'} raised {report.error!r}{user_frame(report.error)}"
    rows = report.comparison.rows
    where = list(dict.fromkeys(row.parameter for row in rows if row.differs and row.quantity != "forward"))
    said = ", ".join(f"d{w}" if w in like.inputs else w for w in where)
    zero = [row.parameter for row in rows if row.differs and row.quantity == ZERO]
    if zero and len(where) == len(zero):
        why, where_said = (f"a key bias's gradient is exactly 0 (the softmax removes it from every "
                           f"score), and your {zero[0]}'s is not"), said
    elif any(row.differs for row in rows if row.quantity == "forward"):
        why = f"your forward differs from {like.text} (torch's and jax's)"
        where_said = f"out{', ' + said if said else ''}"
    elif any(row.differs for row in rows if row.witness == OWN_FORWARD):
        why, where_said = "your backward is not the gradient of your own forward", said
    else:
        why, where_said = ("your backward agrees with finite differences of your own forward but not "
                           "with torch's and jax's gradients: a mistake smaller than finite "
                           "differences resolve"), said
    return f"{name}: WRONG on {where_said} — {why}"
