"""Named arrays as one zero-padded float64 vector, and back.

An elementwise update (an optimizer's step) gives each entry the same result whether it runs on
the arrays or on their entries laid end to end; padded to a power of two, one compiled XLA
program then serves every parameter structure of that padded size, where one per structure
(and per shape) would be compiled otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def bucket(n: int, floor: int) -> int:
    """The padded size for n: the next power of two, at least ``floor``."""
    return max(floor, 1 << (n - 1).bit_length())


def flattened(arrays: dict, floor: int = 8) -> tuple[np.ndarray, Callable[[object], dict]]:
    """(the arrays' entries end to end, zero-padded to ``bucket``; a function that splits such a
    vector back into arrays of the same names and shapes, as float64 copies)."""
    keys = list(arrays)
    shapes = [np.shape(arrays[key]) for key in keys]
    ends = np.cumsum([int(np.prod(shape)) for shape in shapes])
    total = int(ends[-1]) if len(ends) else 0
    vector = np.zeros(bucket(max(total, 1), floor))
    if keys:
        vector[:total] = np.concatenate([np.asarray(arrays[key], np.float64).ravel() for key in keys])

    def named(padded) -> dict:
        pieces = np.split(np.asarray(padded, np.float64)[:total], ends[:-1]) if keys else []
        return {key: piece.reshape(shape).copy()
                for key, piece, shape in zip(keys, pieces, shapes, strict=True)}

    return vector, named
