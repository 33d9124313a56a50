"""What a ``CheckReport`` of a user's layer says (``check`` of a ``UserLayer``): its one-paragraph
message and its text — the network it fails on, the rows that differ, each layer alone."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bpcheck.core.compare import RuleReport
from bpcheck.core.user_code import BadResult, user_frame
from bpcheck.core.verdicts import AGREES, NOT_VERIFIED, RAISED, WITNESSES_DIFFER
from bpcheck.layers.compare import OWN_FORWARD
from bpcheck.layers.problem import StackProblem
from bpcheck.user.inputs_problem import InputsProblem
from bpcheck.user.layouts import DATA, user_shape
from manual.stack import Stack
from manual.stack_text import parse_layers


def backward_disagrees_with_own_forward(report) -> bool:
    """Whether the layer's backward differs from finite differences of its own forward."""
    comparison = report.comparison
    return comparison is not None and any(row.differs for row in comparison.rows
                                          if row.witness == OWN_FORWARD)


def forward_differs(report) -> bool:
    """Whether the layer's NumPy forward differs from its torch forward, the layer alone."""
    return any(_yours(report, f) and f.quantity == "forward" for f in report.findings)


def _yours(report, finding) -> bool:
    """Whether a diagnosis finding is of the user's layer: its kind, or the kind it is like
    (whose other layers run bpcheck's own pair)."""
    return finding.kind == report.rule or (report.like and finding.kind == report.like.partition(":")[0])


def layer_message(report, names: dict[str, str] | None = None) -> str:
    """One paragraph: the verdict and what it means; ``names``: a like= layer's parameter names,
    the kind's → the user's (``conv1.W (your w)``)."""
    name = report.rule
    if report.verdict == AGREES:
        skipped = sum(report.discarded.values())
        reasons = "; ".join(f"{n} {why}" for why, n in report.discarded.most_common())
        more = f" ({skipped} more drawn and left out: {reasons})" if skipped else ""
        if report.like:  # torch and jax compute the kind: finite differences only where they differ
            return (f"{name}: agrees with torch's and jax's {report.like} on {report.examples} random "
                    "networks (alone and inside other layers), float64 and float32; finite differences "
                    f"are taken where a gradient differs{more}")
        return (f"{name}: agrees with torch, jax and finite differences on {report.examples} "
                f"random networks (alone and inside other layers), float64 and float32{more}")
    if report.verdict == NOT_VERIFIED:
        reasons = "; ".join(f"{n} {why}" for why, n in report.discarded.most_common()) or "none drawn"
        return f"{name}: NOT VERIFIED — no network could be checked ({reasons})"
    if report.verdict == RAISED and isinstance(report.error, BadResult):  # it says which part
        return f"{name}: your code returned the wrong thing: {report.error}"
    if report.verdict == RAISED:
        return f"{name}: your {report.part or 'code'} raised {report.error!r}{user_frame(report.error)}"
    if report.verdict == WITNESSES_DIFFER:
        where = sorted({row.parameter for row in report.witness_rows})
        return (f"{name}: your torch and jax forwards disagree (their gradients of "
                f"{', '.join(where)} differ): they must compute the same function")
    where = sorted({row.parameter for row in report.comparison.rows if row.differs})
    yours = {f"{layer}.{kind}": user for layer in _names_of(report) for kind, user in (names or {}).items()}
    said = [f"{w} (your {yours[w]})" if w in yours else w for w in where]
    own = {row.verdict for row in report.comparison.rows
           if row.witness == OWN_FORWARD and row.parameter in where}
    if backward_disagrees_with_own_forward(report):
        why = "your backward is not the gradient of your own forward"
    elif own == {AGREES} and forward_differs(report):
        why = ("your backward is the gradient of your own forward, but that forward differs from "
               + (f"{report.like} (torch's and jax's)" if report.like else "your torch and jax forwards"))
    elif own == {AGREES}:  # and your NumPy forward computes what your torch forward does
        why = ("your backward agrees with finite differences of your own forward, and that forward "
               "with your torch forward, yet not with torch's and jax's gradients: a mistake "
               "smaller than finite differences resolve, or rounding inside your layer beyond "
               "what the allowances measured")
    else:
        why = "finite differences of your own forward could not tell whether it is the forward's fault"
    return f"{name}: WRONG on {', '.join(said)} — {why}"


def _names_of(report) -> list[str]:
    """The name of the user's like= layer in the counterexample (none or one)."""
    problem = report.counterexample
    if not report.like or not isinstance(problem, StackProblem):
        return []
    pinned = parse_layers(report.like)[0]
    return [layer.name for layer in problem.stack.layers if replace(layer, name="") == pinned]


def network(report) -> str | None:
    """The network the report's counterexample is, as text."""

    example = report.counterexample
    if isinstance(example, Stack | InputsProblem):
        return example.describe()
    return example and example.stack.describe()


def _your_samples(report, sample: tuple[int, ...]) -> str:
    """" (C×H×W; 2×1×2 as your code gets them)" where the user's data layout differs from
    bpcheck's (the arrays the user's code got, else the declared layout), else ""."""
    x = (report.yours or {}).get("x")
    yours = (np.shape(x)[1:] if x is not None else
             user_shape((1, *sample), DATA[len(sample)], report.data)[1:] if report.data else sample)
    if yours == sample:
        return ""
    axes = "×".join(DATA.get(len(sample), "?")[1:])
    return f" ({axes}; {'x'.join(map(str, yours))} as your code gets them)"


def layer_text(report) -> str:
    """The message, then (where it failed) the network, the rows that differ and the
    layer-by-layer diagnosis, as plain text."""
    lines = [report.message, *(f"note: {note}" for note in report.notes)]
    problem = report.counterexample

    if isinstance(problem, InputsProblem):  # several named inputs (bpcheck.user.inputs_report)
        return "\n".join(lines + inputs_text(report))
    if isinstance(problem, Stack):  # it raised while its values were drawn
        as_given = "" if problem.tokens else _your_samples(report, problem.input_shape)
        lines.append(f"on the smallest network Hypothesis found: {problem.describe()}{as_given}, "
                     f"{problem.dtype}")
    if not isinstance(problem, StackProblem):
        return "\n".join(lines)
    as_given = _your_samples(report, problem.x.shape[1:])
    lines.append(f"on the smallest network Hypothesis found: {problem.stack.describe()}"
                 f"{as_given}, N={problem.n_samples}, {problem.stack.dtype}, "
                 f"loss {problem.stack.loss}/{problem.stack.reduction}")
    if report.like:
        yours = ", ".join(_names_of(report)) or "none"
        lines.append(f"  your layer is {yours} ({report.like}); arrays in bpcheck's layouts: NCHW, (N, T, D) "
                     "or (N, F), conv W (C_out, C_in, kh, kw), dense W (F_out, F_in)")
    lines += _arrays({"x": problem.x, "y": problem.y, **problem.params})
    if report.yours:
        lines.append(f"  {', '.join(_names_of(report))} as your code gets them (your names and layouts):")
        lines += _arrays(report.yours)
    if report.witness_rows:
        lines.append("your two forwards' gradients, torch's against jax's (the worst entry of each):")
        lines += [f"  {row.parameter}: rel err {row.error.rel:.3e} at {row.error.where}"
                  for row in report.witness_rows]
    elif report.comparison is not None:
        lines.append("what differs (relative to the witness's largest entry; the worst row of each):")
        for (quantity, parameter), rows in _differing(report.comparison).items():
            worst = max(rows, key=lambda row: row.error.rel)
            lines.append(f"  {quantity} of {parameter}: rel err {worst.error.rel:.3e} at "
                         f"{worst.error.where} (tolerance {worst.tolerance:.1e}), against "
                         + ", ".join(row.witness for row in rows))
    if report.findings:
        lines.append("each layer alone against torch (float64, a random dout):")
        lines += [f"  {f.layer} ({f.kind}) {f.quantity}: rel err {f.error:.2e} — " + (
            "; ".join(f.explained_by) or ("your layer differs here" if _yours(report, f)
                                          else "no nearby layer explains it")) for f in report.findings]
    return "\n".join(lines)


def _arrays(arrays: dict) -> list[str]:
    """Each array in its shape, one indented block each."""
    lines = []
    with np.printoptions(precision=6, threshold=200, linewidth=100):
        for name, v in arrays.items():
            head = f"  {name} {np.shape(v)} = "
            text = np.array2string(np.asarray(v), separator=", ", prefix=head)
            lines.append(head + "\n".join(line for line in text.splitlines() if line.strip()))
    return lines


def _differing(report: RuleReport) -> dict[tuple[str, str], list]:
    """The rows that differ, by (quantity, parameter), in the report's order."""
    grouped: dict[tuple[str, str], list] = {}
    for row in report.rows:
        if row.differs:
            grouped.setdefault((row.quantity, row.parameter), []).append(row)
    return grouped


def inputs_text(report) -> list[str]:
    """The draw it fails on, the arrays as your code gets them, the rows that differ."""
    problem = report.counterexample
    lines = [f"on the smallest draw Hypothesis found: {problem.describe()}, {problem.dtype}"]
    if report.yours:
        lines.append("  as your code gets them (your names and layouts):")
        lines += _arrays(report.yours)
    if report.comparison is not None:
        lines.append("what differs (relative to the witness's largest entry, the worst row of each; "
                     "indices in bpcheck's layouts: (N, T, D), W (out, in)):")
        grouped: dict[tuple[str, str], list] = {}
        for row in report.rows:
            grouped.setdefault((row.quantity, row.parameter), []).append(row)
        for (quantity, parameter), rows in grouped.items():
            worst = max(rows, key=lambda row: row.error.rel)
            what = f"d{parameter}" if parameter in problem.arrays else parameter
            lines.append(f"  {quantity} {what}: rel err {worst.error.rel:.3e} at {worst.error.where} "
                         f"(tolerance {worst.tolerance:.1e}), against {', '.join(r.witness for r in rows)}")
    return lines
