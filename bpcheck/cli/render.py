"""Tables and lines the commands print: rule reports, verdicts, problem descriptions."""

from __future__ import annotations

import numpy as np
from rich import box
from rich.table import Table

from bpcheck.core.compare import Row, RuleReport, unsettled
from bpcheck.core.verdicts import AGREES, DIFFERS, INCONCLUSIVE
from bpcheck.mlp.allowances import NOTHING_FLOWS_BACK
from bpcheck.mlp.problem import Problem
from reference import WITNESSES
from reference.projection import DIRECTIONS


def _fmt(value: float) -> str:
    return f"{value:.2e}" if np.isfinite(value) else str(value)


def finite_difference_line(enabled: bool | str, sample: int | None, n_params: int) -> str:
    """Which entries the finite-difference witness checked (``finite_difference_sample``)."""
    if not enabled:
        return "finite differences: off (--finite-differences off)"
    if enabled == "all" or (sample is not None and sample >= n_params):
        return f"finite differences: every one of the {n_params:,} parameter entries"
    along = (f"finite differences: along {DIRECTIONS} random directions of each parameter (seeded by "
             "the problem), entry by entry where the witnesses part")
    if sample is None:
        return along + " (--finite-differences all checks every entry)"
    return (f"{along}; and {sample:,} of {n_params:,} parameter entries, drawn at random "
            "(seed 0; --finite-differences all checks every one)")


def rule_table(report: RuleReport, only_disagreements: bool = False) -> Table:
    """One row per parameter × quantity × witness; errors relative to the truth's ∞-norm."""
    rule = report.rule
    claim = "claims correct" if rule.claims_correct else "known wrong"
    table = Table(title=f"[bold]{rule.name}[/] ({claim}): {rule.summary}",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("param", "quantity", "witness", "max |err|", "at", "rel err", "tolerance",
                   "cosine", "verdict"):
        table.add_column(column, no_wrap=column != "at", overflow="fold",  # only an index may wrap
                         justify="left" if column in ("param", "quantity", "witness") else "right")
    for row in report.rows:
        if only_disagreements and not row.differs:
            continue
        verdict = VERDICT_STYLE[row.verdict].format(row.verdict)
        table.add_row(f"{row.parameter} {'×'.join(map(str, row.shape))}", row.quantity,
                      row.witness, _fmt(row.error.max_abs), where(row),
                      _fmt(row.error.rel), _fmt(row.tolerance), f"{row.error.cosine:.6f}", verdict)
    return table


def where(row: Row) -> str:
    """The entry of the largest error, or the direction (``w0``, ``w1``…) of a projected row."""
    return f"w{row.error.where[0]}" if row.directions else ",".join(map(str, row.error.where))


VERDICT_STYLE = {AGREES: "[green]{}[/]", DIFFERS: "[bold red]{}[/]", INCONCLUSIVE: "[yellow]{}[/]"}
def _parameters(rows: list[Row], verdict: str) -> str:
    return ", ".join(sorted({row.parameter for row in rows if row.verdict == verdict}))


def inconclusive_advice(saturation: str, dtype: str = "float64") -> str:
    """Why a verdict is inconclusive and what to try."""
    tries = "other data or weights (--data, --seed)"
    if saturation.startswith(NOTHING_FLOWS_BACK):  # no dtype would help: the zeros are exact
        return f"{saturation}: right and wrong rules give the same zeros — try {tries}"
    where = saturation or "no unit is saturated: the gradient cancels to its rounding level"
    tries = ("float64, " if dtype != "float64" else "") + tries
    return f"{where}; a correct rule's rounding could be as large as a real error here — try {tries}"


def summary_line(report: RuleReport, dtype: str = "float64") -> str:
    name, verdict = report.rule.name, report.verdict
    if report.unsupported:
        return f"{name}: not run — {report.unsupported}"
    if verdict == AGREES:
        unsure = sorted({f"{row.quantity} vs {row.witness}" for row in report.rows
                         if row.verdict == INCONCLUSIVE})
        if unsure:
            return (f"[green]{name}: agrees with every witness that can settle it[/] "
                    f"({'; '.join(unsure)}: allowance too wide to settle here)")
        return f"[green]{name}: agrees with every witness[/]"
    if verdict == INCONCLUSIVE:
        return (f"[yellow]{name}: inconclusive on {', '.join(unsettled(report.rows))}"
                f" — {inconclusive_advice(report.saturation, dtype)}[/]")
    wrong = _parameters(report.rows, DIFFERS)
    if report.rule.claims_correct:
        return f"[bold red]{name}: DIFFERS on {wrong} — a rule that claims to be correct[/]"
    return f"[yellow]{name}: differs on {wrong}, as expected of a known-wrong rule[/]"


def witness_line(rows: list[Row]) -> str:
    bad = [f"{row.rule} ({row.quantity} {row.parameter})" for row in rows if row.differs]
    if bad:
        return "[bold red]witnesses disagree among themselves: " + "; ".join(bad) + "[/]"
    unsure = [f"{row.rule} ({row.quantity} {row.parameter})" for row in rows
              if row.verdict == INCONCLUSIVE]
    if unsure:
        return "[yellow]witnesses cannot settle among themselves: " + "; ".join(unsure) + "[/]"
    compared = {name for row in rows for name in row.rule.split(" vs ")}  # "jax vs torch"
    ran = ", ".join(witness.title for name, witness in WITNESSES.items() if name in compared)
    return f"[green]witnesses agree among themselves ({ran})[/]"


def _arrays(named: dict) -> str:
    """Each array in full, on lines ``  name = [...]``."""
    with np.printoptions(precision=17, threshold=10_000):
        return "\n".join(f"  {name} = {np.array2string(value, separator=', ')}"
                         for name, value in named.items())


def describe_problem(problem: Problem) -> str:
    """Everything needed to rebuild a problem, printed in full."""
    spec = problem.spec
    arrays = _arrays({**problem.params, "X": problem.X, "Y": problem.Y})
    return (f"  sizes={spec.sizes} activations={spec.activations} loss={spec.loss}/{spec.reduction} "
            f"l2={spec.l2}{' l2_biases=True' if spec.l2_biases else ''} bias={spec.bias} "
            f"layout={spec.layout} dtype={spec.dtype} "
            f"lr={problem.lr}\n{arrays}")


def describe_stack_problem(problem) -> str:
    """Everything needed to rebuild a network of layers' problem (``StackProblem``), in full."""
    stack = problem.stack
    arrays = _arrays({**problem.params, "x": problem.x, "y": problem.y,
                      **{f"{name} mask": m for name, m in problem.masks.items()}, **problem.buffers})
    return (f"  {stack.describe()} loss={stack.loss}/{stack.reduction} dtype={stack.dtype} "
            f"lr={problem.lr}\n{arrays}")


def explained_by(e) -> str:
    """A diagnosis' explanation of one parameter, with every other one exactly as simple."""
    if not e.hypotheses:
        return "nothing in the panel"
    return "; or, as simply: ".join(" + ".join(hypotheses) for hypotheses in
                                    [e.hypotheses, *(other[0] for other in e.alternatives)])


def describe_factor(c: float, n: int) -> str:
    """c as a reader would name it: −1, 2, 1/N, N, or the number."""
    for value, words in ((1.0, ""), (-1.0, "sign flipped (×−1)"), (2.0, "×2"), (0.5, "×½"),
                         (float(n), f"×N (N = {n})"), (1.0 / n, f"×1/N (N = {n})"),
                         (-float(n), "×−N"), (-1.0 / n, "×−1/N")):
        if np.isclose(c, value, rtol=1e-9, atol=0):
            return words
    return f"×{c:.6g}"
