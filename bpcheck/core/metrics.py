"""How far a candidate array is from the truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of the flattened arrays; 1 when both are zero, 0 when one is."""
    with np.errstate(invalid="ignore"):  # each scaled by its largest entry: no overflow in ‖·‖²
        a, b = (np.ravel(v) / max(float(np.max(np.abs(v), initial=0.0)), np.finfo(np.float64).tiny)
                for v in (np.asarray(a, np.float64), np.asarray(b, np.float64)))
        norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
        if norm_a == 0 or norm_b == 0:
            return 1.0 if norm_a == norm_b else 0.0
        return float(np.dot(a / norm_a, b / norm_b))


def discrepancy(candidate: np.ndarray, truth: np.ndarray) -> Discrepancy:
    """Max absolute error with its index, ∞-norm relative error and cosine similarity."""
    a = np.asarray(candidate, dtype=np.float64)
    b = np.asarray(truth, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"candidate has shape {a.shape}; truth has shape {b.shape}")
    error = np.abs(a - b)
    where = np.unravel_index(int(np.argmax(error)), error.shape) if error.size else ()
    max_abs = float(error.max(initial=0.0))
    scale, truth_zero = comparison_scale(a, b)
    return Discrepancy(max_abs, tuple(int(i) for i in where), relative(max_abs, scale), cosine(a, b),
                       truth_zero)


def comparison_scale(candidate: np.ndarray, truth: np.ndarray) -> tuple[float, bool]:
    """What a relative error is relative to: ‖truth‖_∞, or, where the truth is exactly 0 and the
    candidate is not, ‖candidate‖_∞ (an error over 0 says nothing; over the candidate it says
    all of it is error); and whether it is the candidate's."""
    scale = float(np.max(np.abs(truth), initial=0.0))
    if scale > 0 or not np.all(np.isfinite(candidate)):
        return scale, False
    own = float(np.max(np.abs(candidate), initial=0.0))
    return own, own > 0
