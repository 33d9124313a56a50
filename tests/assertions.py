"""Assertion helpers whose messages name the rule, parameter, witness, dtype, shape and error,
and ``run_cli``: a command's output, its exit code asserted."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable

from bpcheck.cli import main
from bpcheck.core.compare import Row
from bpcheck.mlp.problem import Problem


def describe_problem(problem: Problem) -> str:
    spec = problem.spec
    return (f"sizes={spec.sizes} activations={spec.activations} bias={spec.bias} "
            f"layout={spec.layout} dtype={spec.dtype} N={problem.n_samples} lr={problem.lr}")


def describe_row(row: Row) -> str:
    return (f"{row.rule}: {row.quantity} of {row.parameter} {row.shape} vs {row.witness}: "
            f"max |err| {row.error.max_abs:.3e} at {row.error.where}, "
            f"rel err {row.error.rel:.3e} (tolerance {row.tolerance:.3e}), cosine {row.error.cosine:.6f}")


def assert_rows_agree(rows: Iterable[Row], problem: Problem) -> None:
    rows = list(rows)
    assert rows, "nothing was compared"
    bad = [describe_row(row) for row in rows if not row.agrees]
    assert not bad, "disagreement on " + describe_problem(problem) + "\n" + "\n".join(bad)


def run_cli(argv: list[str], code: int) -> str:
    """What ``bpcheck argv`` prints, stdout then stderr, whitespace collapsed (rich wraps lines
    at the terminal's width), asserting its exit code; a usage error argparse raises as
    SystemExit counts with its code."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            returned = main(argv)
        except SystemExit as exit_:
            returned = exit_.code
    text = " ".join((out.getvalue() + err.getvalue()).split())
    assert returned == code, f"bpcheck {' '.join(map(str, argv))} exited {returned}, not {code}:\n{text}"
    return text
