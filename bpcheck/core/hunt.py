"""What a mutant's hunt found (``Hunt``), for every family's mutants; plain data, so that the
catalogues load without Hypothesis."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Hunt:
    """How the suite fared against one mutant."""

    mutant: object  # a bpcheck.mlp.mutants.Mutant, or a layer mutant's bpcheck.layers.compare.StackRule
    caught: bool
    witnesses: list[str]  # the witnesses that disagree on the minimal network
    examples_to_catch: int | None
    minimal: object = None  # the shrunk Problem (StackProblem)
    report: object = None
    checked: int = 0  # networks compared (not discarded), those tried while shrinking included
    unchecked: str = ""  # why none was, if none was (``bpcheck.core.search.Verdict.unchecked_reason``)


def hunted(mutant, verdict) -> Hunt:
    """A mutant's ``Hunt`` from its search's ``bpcheck.core.search.Verdict``."""
    caught = verdict.failure is not None
    witnesses = sorted({row.witness for row in verdict.report.rows if not row.agrees}) if caught else []
    return Hunt(mutant, caught, witnesses, verdict.first_failure_at, verdict.failure, verdict.report,
                verdict.examples, "" if verdict.examples else verdict.unchecked_reason())
