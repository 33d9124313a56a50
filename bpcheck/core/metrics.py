"""How far a candidate array is from the truth."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TINY = float(np.finfo(np.float64).tiny)


@dataclass(frozen=True)
class Discrepancy:
    """Error of ``candidate`` against ``truth`` (both compared in float64)."""

    max_abs: float
    where: tuple[int, ...]  # index of the largest absolute error
    rel: float  # ‖a − b‖_∞ / ‖b‖_∞, or / ‖a‖_∞ where b is exactly 0 (then 1: all of a is error)
    cosine: float  # ⟨a, b⟩ / (‖a‖‖b‖); 1 when both are zero
    truth_zero: bool = False  # b is exactly 0 everywhere (and a is not): rel is against a's size


def relative(error: float, scale: float) -> float:
    """error / scale, with 0/0 = 0 and e/0 = inf."""
    if scale > 0:
        return error / scale
    return 0.0 if error == 0 else float("inf")


def cosine(a: np.ndarray, b: np.ndarray, largest: tuple[float | None, float | None] = (None, None)) -> float:
    """Cosine similarity of the flattened arrays; 1 when both are zero, 0 when one is.
    ``largest``: max |a_i| and max |b_i| where the caller has them already (else computed)."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    top_a = float(np.abs(a).max(initial=0.0)) if largest[0] is None else largest[0]
    top_b = float(np.abs(b).max(initial=0.0)) if largest[1] is None else largest[1]
    with np.errstate(invalid="ignore"):  # each scaled by its largest entry: no overflow in ‖·‖²
        a, b = a / max(top_a, TINY), b / max(top_b, TINY)
        norm_a, norm_b = math.sqrt(a.dot(a)), math.sqrt(b.dot(b))  # np.linalg.norm's own sum
        if norm_a == 0 or norm_b == 0:
            return 1.0 if norm_a == norm_b else 0.0
        return float((a / norm_a).dot(b / norm_b))


def discrepancy(candidate: np.ndarray, truth: np.ndarray, error: np.ndarray | None = None,
                scale: tuple[float, bool, float | None] | None = None) -> Discrepancy:
    """Max absolute error with its index, ∞-norm relative error and cosine similarity.
    ``error`` (|a − b|) and ``scale`` (``comparison_scale``'s and max |b_i|): where the caller has
    them already (``bpcheck.core.compare.judged``)."""
    a = np.asarray(candidate, dtype=np.float64)
    b = np.asarray(truth, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"candidate has shape {a.shape}; truth has shape {b.shape}")
    error = np.abs(a - b) if error is None else error
    at = int(error.argmax()) if error.size else 0
    max_abs = float(error.flat[at]) if error.size else 0.0  # max |a − b| (NaN where one is: argmax finds it)
    if scale is None:
        reach, truth_zero = comparison_scale(a, b)
        scale = (reach, truth_zero, None)
    reach, truth_zero, largest_b = scale
    where = np.unravel_index(at, error.shape) if error.size else ()
    return Discrepancy(max_abs, tuple(int(i) for i in where), relative(max_abs, reach),
                       cosine(a, b, (reach if truth_zero else None, largest_b)), truth_zero)


def comparison_scale(candidate: np.ndarray, truth: np.ndarray,
                     largest: float | None = None) -> tuple[float, bool]:
    """What a relative error is relative to: ‖truth‖_∞, or, where the truth is exactly 0 and the
    candidate is not, ‖candidate‖_∞ (an error over 0 says nothing; over the candidate it says
    all of it is error); and whether it is the candidate's. ``largest``: ‖truth‖_∞, if known."""
    scale = float(np.abs(truth).max(initial=0.0)) if largest is None else largest
    if scale > 0 or not np.isfinite(candidate).all():
        return scale, False
    own = float(np.abs(candidate).max(initial=0.0))
    return own, own > 0
