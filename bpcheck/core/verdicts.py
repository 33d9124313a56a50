"""The verdict words every check reports, one vocabulary for every kind (a rule, an activation,
a loss, a layer, a comparison row): what ``report.verdict`` holds and the CLI prints.

* ``AGREES`` — every witness agrees within the measured allowances;
* ``DIFFERS`` — a rule or a comparison differs from a witness beyond them;
* ``WRONG`` — user code (a rule, an activation, a loss) is wrong: the smallest network shows it;
* ``RAISED`` — user code raised, or returned the wrong thing;
* ``WITNESSES_DIFFER`` — a user layer's own torch and jax forwards disagree;
* ``INCONCLUSIVE`` — a comparison nothing settles (saturated, dead, rounding decides);
* ``NOT_VERIFIED`` — a check that could verify nothing (no network could be checked, or the
  witnesses disagree among themselves).

The exit codes (``bpcheck.cli.exits``) follow ``FAILED`` and ``UNSETTLED``."""

from __future__ import annotations

AGREES, DIFFERS, WRONG, RAISED = "agrees", "DIFFERS", "WRONG", "RAISED"
WITNESSES_DIFFER, INCONCLUSIVE, NOT_VERIFIED = "WITNESSES DIFFER", "inconclusive", "NOT VERIFIED"

#: Verdicts that say something is wrong (exit 1).
FAILED = frozenset({DIFFERS, WRONG, RAISED, WITNESSES_DIFFER})
#: Verdicts where nothing differs but nothing was settled either (exit 3).
UNSETTLED = frozenset({INCONCLUSIVE, NOT_VERIFIED})
