"""Assertion helpers whose messages name the rule, parameter, witness, dtype, shape and error."""

from __future__ import annotations

from collections.abc import Iterable

from bpcheck.compare import Problem, Row


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
