"""A user's layer against torch, jax and finite differences (``bpcheck.user.layer_check`` sends
every one-input layer with a torch and jax forward, written or derived, or declared like=):
Hypothesis draws the layer alone and inside small random networks, each compared with the
witnesses (``bpcheck.layers.compare``); the first disagreement, or exception, is shrunk to the
smallest network, then diagnosed layer by layer (``bpcheck.layers.diagnose``)."""

from __future__ import annotations

from contextlib import nullcontext

from bpcheck.core.compare import RuleReport
from bpcheck.core.search import search
from bpcheck.core.tolerances import LAYER_DIAGNOSIS
from bpcheck.core.verdicts import AGREES, DIFFERS, INCONCLUSIVE, RAISED, WITNESSES_DIFFER, WRONG
from bpcheck.layers.compare import StackRule, swapped
from bpcheck.layers.diagnose import diagnose_layers
from bpcheck.layers.probes import MOST_FLAT, compare_user_layer, flat_share, judged_gap
from bpcheck.user.first_call import raised_hint
from bpcheck.user.layer import UserLayer
from bpcheck.user.layer_draws import Draw, drawn_problem, draws, settled
from bpcheck.user.layer_report import layer_message
from bpcheck.user.like_draws import is_yours
from bpcheck.user.like_pair import as_yours
from bpcheck.user.registry import REGISTRY
from bpcheck.user.report import CheckReport
from manual.stack import walk

#: Why a draw where most of your layer's outputs are flat (``bpcheck.layers.probes``) is not checked.
SATURATED_DRAW = ("your layer is saturated there: most of its outputs do not respond to its input "
                  "(a gated unit's input far from 0, a normalisation over two values)")


def check_against_witnesses(layer: UserLayer, examples: int, seed: int) -> CheckReport:
    """Search ``examples`` random networks with ``layer`` (``bpcheck.core.search``) for one where
    the derived network (your layer's pair among the built-in ones) disagrees with a witness;
    shrink it; diagnose. The verdict is agrees, WRONG, WITNESSES DIFFER, RAISED or NOT VERIFIED."""
    like = layer.declared
    found = CheckReport(layer.name, AGREES, 0, "", kind="layer", like=layer.like or "",
                        data=like.data if like else "")
    last: dict = {}  # the last disagreement's problem, witness rows and whether the forwards differ
    with REGISTRY.scoped(layer) if like is None else nullcontext():  # like=: a kind known already
        swaps = {like.layer.kind: layer.pair()} if like else {}
        rule = StackRule(layer.name, f"your layer {layer.name} among the derived layers",
                         pairs=swapped(swaps))

        def judge(drawn: Draw, discard) -> RuleReport:
            problem = drawn_problem(drawn, discard, layer)
            name = next(item.name for item in walk(drawn.stack.layers) if is_yours(layer, item))
            share, gain = flat_share(problem, name)
            if share > MOST_FLAT:  # layer_probes: most of its outputs do not respond to its input
                discard(SATURATED_DRAW)
            # like=: torch and jax compute the kind itself, so finite differences (of torch's
            # forward and of yours: most of a draw's time, all of it for a recurrent layer or
            # attention, differenced layer by layer) only tell a wrong forward from a wrong
            # backward: taken where the gradients differ. Your own kind: by projection (torch's
            # forward and your NumPy one may compute different functions), entry by entry where
            # anything differs, for the report
            report, witness_rows, truth = compare_user_layer(problem, rule, name, gain, like is None,
                                                             finite_differences=like is None)
            if report.verdict == DIFFERS or (like is None and any(row.differs for row in witness_rows)):
                report, witness_rows, truth = compare_user_layer(problem, rule, name, gain, truth=truth)
            # the reruns perturb your layer's input and output, not its insides: torch's and jax's
            # gradients of it are held to the layer-alone threshold, a different function's O(1),
            # on the entries they judge (not where float32 lost them: a saturated unit inside)
            forwards = [row for row in witness_rows if row.differs and row.rule.startswith("jax vs")]
            apart = [row for row in forwards
                     if judged_gap(truth.gradients, truth.witness_allowance, row.parameter) > LAYER_DIAGNOSIS]
            if apart:  # your two forwards disagree: a disagreement of its own kind
                last.update(problem=problem, report=report, apart=apart)
                return RuleReport(rule, apart)
            if report.verdict != DIFFERS and any(row.differs for row in witness_rows):
                discard("finite differences disagree with torch and jax (a kink? declare kinks=)"
                        if not forwards else "torch's and jax's gradients differ by rounding inside "
                        "your layer (a cancellation the reruns cannot see)")
            if report.verdict == INCONCLUSIVE:  # counted by its reason's first clause
                discard(f"inconclusive: {report.saturation.split(':')[0]}" if report.saturation
                        else "inconclusive")
            if report.verdict == DIFFERS:
                last.update(problem=problem, report=report, apart=[])
            return report

        verdict = search(layer.name, draws(layer), judge, examples, seed, keep_errors=True)
        if settled(found, verdict, last):
            found.witness_rows = last["apart"]
            found.verdict = WITNESSES_DIFFER if found.witness_rows else WRONG
        if found.verdict == WRONG:  # while the layer is registered: the diagnosis runs it
            found.findings = diagnose_layers(rule, found.counterexample)
            if like is not None:  # its arrays as your code gets them
                problem = found.counterexample
                found.yours = as_yours(like, problem.stack, problem.params, problem.x)
            found.rows = [row for row in found.comparison.rows if row.differs]
    found.message = layer_message(found, like.names if like else None)
    if like is not None and found.verdict == RAISED:
        found.message += raised_hint(like, found.error)
    return found
