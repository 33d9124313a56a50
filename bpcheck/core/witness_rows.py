"""The witnesses checked against each other: every witness's gradients and steps against the
sensitivity witness's (torch), in float64, entry by entry (``bpcheck.core.compare``'s rows) and
along random directions (``bpcheck.core.projected``), an estimate judged by its own error
estimate. Each family's comparison adds these rows to its rules' reports."""

from __future__ import annotations

import numpy as np

from bpcheck.core.compare import Row, Truth, gradient_row, update_row
from bpcheck.core.projected import projected_row
from reference import SENSITIVITY_WITNESS


def compare_witnesses(problem, truth: Truth) -> list[Row]:
    """The witnesses checked against the sensitivity witness (torch): they must agree among
    themselves, in float64; an estimate is judged by its own error estimate."""
    rows, f64, allowance, base = [], problem.in_float64(), truth.witness_allowance, SENSITIVITY_WITNESS
    for witness, gradients in truth.gradients.items():
        for parameter, candidate in gradients.items() if witness != base else ():
            if witness in truth.errors and not np.isfinite(candidate).any():
                continue  # no entry differenced here (a sample, or placing a disagreement elsewhere)
            if witness in truth.errors:
                rows.append(gradient_row(f"{base} vs {witness}", truth, witness, parameter,
                                          truth.gradients[base][parameter], allowance))
            else:
                rows.append(gradient_row(f"{witness} vs {base}", truth, base, parameter, candidate,
                                          allowance))
    for witness, found in truth.projections.items():
        rows.extend(projected_row(f"{base} vs {witness}", truth, witness, parameter,
                                  truth.gradients[base][parameter], allowance) for parameter in found)
    for witness, steps in truth.steps.items():
        for parameter, new_value in steps.items() if witness != base else ():
            rows.append(update_row(f"{witness} vs {base}", f64, truth, base, parameter, new_value,
                                    allowance, "float64"))
    return rows
