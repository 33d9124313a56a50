"""The exit codes every ``bpcheck`` command returns (docs/reference/exit-codes.md says the same).

* 0 ``EXIT_AGREES``: everything checked agrees (a report or file was written as asked);
* 1 ``EXIT_WRONG``: something differs — a rule or witness DIFFERS, user code is WRONG or
  RAISED, a mutant is missed, a disagreement nothing explains;
* 2 ``EXIT_USAGE``: bad usage, an error naming the argument, before any work;
* 3 ``EXIT_INCONCLUSIVE``: nothing differs, but something could not be settled
  (inconclusive, NOT VERIFIED);
* 130 ``EXIT_INTERRUPTED``: Ctrl-C (128 + SIGINT, as shells report it).
"""

from __future__ import annotations

from bpcheck.core.verdicts import INCONCLUSIVE

EXIT_AGREES, EXIT_WRONG, EXIT_USAGE, EXIT_INCONCLUSIVE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

#: The scheme in one paragraph, for ``bpcheck --help``.
EPILOG = ("Exit codes (every command): 0 agrees; 1 wrong (DIFFERS, WRONG, RAISED, a mutant "
          "missed); 2 bad usage; 3 inconclusive or NOT VERIFIED; 130 interrupted (Ctrl-C).")

#: Which code wins when parts of one run end differently: wrong, then inconclusive, then agrees.
_PRECEDENCE = (EXIT_AGREES, EXIT_INCONCLUSIVE, EXIT_WRONG)


def worst(*codes: int) -> int:
    """The run's code from its parts' codes (EXIT_AGREES, EXIT_INCONCLUSIVE or EXIT_WRONG)."""
    return max(codes, key=_PRECEDENCE.index)


def comparison_exit_code(reports: list, witness_rows: list) -> int:
    """EXIT_WRONG if a claims-correct rule or a witness differs, EXIT_INCONCLUSIVE if a
    claims-correct rule is inconclusive, else EXIT_AGREES. (Witness pairs that cannot settle
    are reported; they leave the rules' verdicts to the witnesses that can.)"""
    if not all(report.as_claimed for report in reports) or any(row.differs for row in witness_rows):
        return EXIT_WRONG
    if any(r.verdict == INCONCLUSIVE for r in reports if r.rule.claims_correct):
        return EXIT_INCONCLUSIVE
    return EXIT_AGREES
