"""A ``CheckReport`` as text (``print(report)``) and as HTML (a notebook shows it by itself)."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from bpcheck.mlp.conventions import nested_items


def _array(value: Any) -> str:
    with np.printoptions(precision=6, threshold=200, linewidth=100, suppress=False):
        return np.array2string(np.asarray(value), separator=", ")


def diagnosis_lines(report) -> list[str]:
    """One line per differing parameter: its simplest explanation, then every other one exactly
    as simple."""

    def said(hypotheses: tuple[str, ...], factor: float, words: str) -> str:
        if hypotheses == ("the exact gradient",) and (words or factor == 1.0):
            return words or "the exact gradient"
        named = words or ("" if factor == 1.0 else f"×{factor:.6g}")
        return " + ".join(hypotheses) + (f", {named}" if named else "")

    lines = []
    for e in report.diagnosis:
        if not e.hypotheses:
            lines.append(f"{e.parameter}: nothing in the panel explains it (the nearest leaves "
                         f"{e.residual:.2e} of it where rounding allows {e.allowed:.1e})")
            continue
        lines.append(f"{e.parameter}: {said(e.hypotheses, e.factor, e.factor_words)} "
                     f"(residual {e.residual:.1e})")
        lines += [f"    or, as simply: {said(*other)}" for other in e.alternatives]
    return lines


def _zero(row) -> str:
    """Why a row's relative error is against your own values: the witness's are exactly 0."""
    return " of yours: the witness's are exactly 0" if row.error.truth_zero else ""


def entry_lines(report) -> list[str]:
    """Per wrong parameter: its worst entry, yours and autodiff's, and who says so."""
    lines = []
    for e in report.entries:
        rows = [row for row in report.rows if row.parameter == e.parameter]
        witnesses = ", ".join(dict.fromkeys(row.witness for row in rows))
        rel, allowed = max(r.error.rel for r in rows), max(r.tolerance for r in rows)
        how = ("autodiff's gradient of it is exactly 0 here" if any(r.error.truth_zero for r in rows)
               else f"relative error {rel:.2e} where rounding allows {allowed:.1e}")
        yours = "your step implies a gradient" if e.from_step else "yours"
        lines.append(f"{e.parameter}: {yours} {e.location} = {e.yours:.6g}, autodiff {e.exact:.6g} "
                     f"(differs from {witnesses}: {how})")
    if not report.entries:  # an activation's or loss's report: its rows
        lines += [f"{row.parameter} {row.quantity} vs {row.witness}: max|err| {row.error.max_abs:.3e} "
                  f"at {row.error.where}, rel {row.error.rel:.3e}{_zero(row)} (tolerance {row.tolerance:.1e})"
                  for row in report.rows]
    return lines


def _network(report) -> list[str]:
    s = report.counterexample.spec
    return [f"sizes={s.sizes} activations={s.activations} loss={s.loss}/{s.reduction} "
            f"l2={s.l2} dtype={s.dtype} lr={report.counterexample.lr:g}"]


def _arrays(report) -> list[tuple[str, str]]:
    yours = report.yours
    if yours is None:
        p = report.counterexample
        return [(name, _array(v)) for name, v in {**p.params, "X": p.X, "Y": p.Y}.items()]
    return [*((path, _array(v)) for path, v in nested_items(yours["params"])),
            ("X", _array(yours["X"])), ("Y", _array(yours["Y"]))]


def as_text(report) -> str:
    if report.kind == "layer":
        from bpcheck.user.layer_report import layer_text
        return layer_text(report)
    lines = [report.message]
    if report.counterexample is not None:
        lines += ["smallest network (in your conventions):", *("  " + line for line in _network(report))]
        lines += [f"  {name} = " + text.replace("\n", "\n" + " " * (len(name) + 5))
                  for name, text in _arrays(report)]
    lines += [f"  {line}" for line in entry_lines(report)]
    if report.diagnosis:
        lines += ["why:", *("  " + line for line in diagnosis_lines(report))]
    lines += [f"  {line}" for line in (*map(str, report.elements), *map(str, report.kinks), report.reached,
                                                  *report.notes)
              if line and line not in report.message]
    return "\n".join(lines)


def as_html(report) -> str:
    colour = "green" if report.passed else "#b00"
    parts = [f"<p style='color:{colour}'><b>{html.escape(report.message)}</b></p>"]
    if report.kind == "layer":  # its text, preformatted
        from bpcheck.user.layer_report import layer_text
        return parts[0] + "<pre>" + html.escape(layer_text(report).partition("\n")[2]) + "</pre>"
    if report.counterexample is not None:
        parts.append(f"<p>smallest network: <code>{html.escape(_network(report)[0])}</code></p>")
        parts.append("<details><summary>its arrays, in your conventions</summary><pre>"
                     + html.escape("\n".join(f"{n} = {t}" for n, t in _arrays(report))) + "</pre></details>")
    if report.rows:
        head = "".join(f"<th>{h}</th>" for h in ("param", "quantity", "witness", "max |err|", "at",
                                                  "rel err", "tolerance"))
        body = "".join(
            f"<tr><td>{r.parameter}</td><td>{r.quantity}</td><td>{r.witness}</td>"
            f"<td>{r.error.max_abs:.3e}</td><td>{r.error.where}</td><td>{r.error.rel:.3e}{_zero(r)}</td>"
            f"<td>{r.tolerance:.1e}</td></tr>" for r in report.rows)
        parts.append(f"<table><tr>{head}</tr>{body}</table>")
    if report.diagnosis:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in diagnosis_lines(report))
        parts.append(f"<p>why:</p><ul>{items}</ul>")
    return "\n".join(parts)
