"""A user layer's first answer, before torch and jax load: its forward and backward on the
smallest network Hypothesis draws, in NumPy alone. Code that raises on every call is told in
about a second instead of after the witnesses' imports (``bpcheck verify``, and ``check``)."""

from __future__ import annotations

from contextlib import nullcontext

from bpcheck.core.compare import RuleReport
from bpcheck.core.search import search, watching
from bpcheck.core.verdicts import RAISED
from bpcheck.layers.compare import StackRule, swapped
from bpcheck.user.layer import UserLayer
from bpcheck.user.layer_draws import Draw, drawn_problem, draws, settled
from bpcheck.user.layer_report import layer_message
from bpcheck.user.like import KEY_BIAS, Like
from bpcheck.user.like_pair import NotReplayed
from bpcheck.user.report import CheckReport
from bpcheck.user.tables import MANUAL_LAYERS


def first_call(layer: UserLayer, seed: int = 0) -> CheckReport | None:
    """The RAISED report of ``layer`` (one input) whose code raises on the first network the
    search draws (the smallest: Hypothesis starts from the simplest draw), or None: it ran, it
    was not drawn, or it takes several inputs (the full check then says). A like= layer runs in
    its kind's place; any other joins the derived layers' tables for the call
    (``bpcheck.user.tables.MANUAL_LAYERS``), drawn as its full check draws it. Its calls are
    limited as the caller's ``bpcheck.core.user_code.time_limit`` says."""
    like = layer.declared
    if like is not None and (len(like.inputs) > 1 or KEY_BIAS in like.names):
        return None
    own_forward_alone = like is None and layer.torch is None
    with MANUAL_LAYERS.scoped(layer) if like is None else nullcontext():
        rule = StackRule(layer.name, f"your layer {layer.name}",
                         pairs=swapped({like.layer.kind: layer.pair()} if like else {}))

        def judge(drawn: Draw, discard) -> RuleReport:
            rule.evaluate(drawn_problem(drawn, discard, layer))  # your forward and backward
            return RuleReport(rule, [])

        strategy = draws(layer, "float64" if own_forward_alone else None)
        with watching(lambda checked, left_out: None):  # a progress display counts the full check's
            verdict = search(layer.name, strategy, judge, 1, seed, keep_errors=True, witnesses=False)
    found = CheckReport(layer.name, "", 0, "", kind="layer", like=layer.like or "",
                        data=like.data if like else "")
    settled(found, verdict, {})
    if found.verdict != RAISED:
        return None
    found.message = layer_message(found, like.names if like else None)
    if like is not None:
        found.message += raised_hint(like, found.error)
    return found


#: How a hint names the sample ranks a like= kind is drawn on.
RANK_WORDS = {1: "(N, F)", 2: "(N, T, D)", 3: "images"}


def raised_hint(like: Like, error: BaseException | None) -> str:
    """What a like= layer's RAISED message adds, in brackets: the ranks bpcheck draws the kind
    on, where code written for one rank raised on another (unpacking ``x.shape``, an axis out of
    range); an embedding's vocabulary, where it indexed past its table; else nothing."""
    shaped = isinstance(error, ValueError | IndexError) and not isinstance(error, NotReplayed)
    if len(like.ranks) > 1 and shaped:
        drawn = " and ".join(RANK_WORDS[r] for r in like.ranks)
        return (f" (bpcheck draws {like.layer.kind} on {drawn}: if your layer takes one of them only, "
                "say which, e.g. rank=1 or layout='NCHW')")
    if like.layer.kind == "embedding" and isinstance(error, IndexError):
        return (f" (bpcheck hands your forward integer tokens (N, T) in [0, {like.layer.vocab}) for "
                f"like={like.text!r}: does your table have {like.layer.vocab} rows?)")
    return ""
