"""Rows of finite differences by projection: a gradient compared with finite differences along a
few random directions of its parameter (``reference.projection``), one row per rule ×
parameter × witness, with a verdict of its own (allowance: ``bpcheck.core.tolerances``
``projected_allowance``; conclusive against ``projected_scale``)."""

from __future__ import annotations

import numpy as np

from bpcheck.core.compare import Row, Truth, judged
from bpcheck.core.tolerances import INFORMATIVE, projected_allowance, projected_scale
from bpcheck.core.verdicts import INCONCLUSIVE
from manual.spec import Params
from reference import SENSITIVITY_WITNESS

#: The witness name of finite differences by projection in rows and reports.
PROJECTED = "numeric"
#: The quantity of a projected row: a gradient along directions w, not entry by entry. Such a row
#: can add DIFFERS; it settles no parameter (``bpcheck.core.compare.unsettled``: per-entry rows
#: do), and its ``error.where`` is a direction, not an entry.
ALONG = "gradient·w"
#: Entries differenced one by one to place a disagreement, at most per parameter: where torch
#: parts from the projection, or a rule from torch.
PLACE_ENTRIES = 64


def projected_row(name: str, truth: Truth, witness: str, parameter: str, candidate: np.ndarray,
                  allowance: Params) -> Row:
    """``candidate``·w against D_h along each direction w of ``truth.projections[witness]``; its
    ``error.where`` is the direction (from 0), and an inconclusive row says why."""
    found = truth.projections[witness][parameter]
    scale = exact_scale(truth, witness, parameter)
    along = found.along(candidate)
    allowed = projected_allowance(found.directions, allowance[parameter], found.errors, found.derivatives,
                                  scale)
    verdict, tolerance, error = judged(along, found.derivatives, allowed, truth.floor, bool(truth.saturation),
                                       scale)
    reason = why_inconclusive(found.derivatives, allowed, scale) if verdict == INCONCLUSIVE else ""
    shape = np.shape(truth.gradients[SENSITIVITY_WITNESS][parameter])
    return Row(name, ALONG, parameter, shape, witness, error, tolerance, verdict, len(along),
               directions=len(along), reason=reason)


def parts(truth: Truth, witness: str, parameter: str, candidate: np.ndarray, allowance: Params) -> bool:
    """Whether ``projected_row`` would say DIFFERS, without building the row: some finite D_h off
    ``candidate``·w by more than the allowance, or a candidate·w not finite where D_h is."""
    found = truth.projections[witness][parameter]
    along, d_h = found.along(candidate), found.derivatives
    allowed = projected_allowance(found.directions, allowance[parameter], found.errors, d_h,
                                  exact_scale(truth, witness, parameter))
    with np.errstate(invalid="ignore"):
        judged = np.isfinite(d_h) & np.isfinite(allowed)
        return bool(np.any(judged & ~(np.abs(along - d_h) <= allowed))
                    or np.any(np.isfinite(d_h) & ~np.isfinite(along)))


def exact_scale(truth: Truth, witness: str, parameter: str) -> np.ndarray:
    """``projected_scale`` of the witness's directions against the exact gradient (0 where
    nothing flows back: only λθ beside zeros, nothing of the backward pass to judge), once per
    truth: each rule's row and the witnesses' own take the same."""
    key = ("projected_scale", witness, parameter)
    if key not in truth.derived:
        exact = truth.gradients[SENSITIVITY_WITNESS][parameter]
        truth.derived[key] = projected_scale(truth.projections[witness][parameter].directions,
                                             exact if truth.flows_back else np.zeros_like(exact))
    return truth.derived[key]


def why_inconclusive(derivatives: np.ndarray, allowed: np.ndarray, scale: np.ndarray) -> str:
    """Why a projected row settles nothing: a difference that is not finite, a step across a kink
    (the estimate breaks its premise), or an allowance above INFORMATIVE of the typical
    projection (``projected_scale``)."""
    if not np.all(np.isfinite(derivatives)):
        return "finite differences along a direction are not finite (the loss overflows there)"
    if not np.all(np.isfinite(allowed)):
        return ("a kink or a sharp bend lies within the step along a direction: finite differences "
                "do not decide there")
    if not np.any(scale):
        return "the exact gradient is 0: along a direction only the rounding of its entries shows"
    worst = float(np.max(allowed / np.where(scale > 0, scale, np.inf)))
    return (f"the allowance along a direction is {worst:.2g} of an error as large as the gradient "
            f"(at most {INFORMATIVE:g} settles it)")
