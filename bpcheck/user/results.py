"""What a user layer's code returns, checked (``arrays_problem``): each array of its shape and
dtype and NaN-free where its inputs are. An array more precise than the check's dtype (float64
from ``np.zeros`` in a float32 check) is no error: it is compared after rounding (``in_dtype``),
and a check's ``dtype_slips`` notes say so beside its verdict."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from bpcheck.core.user_code import nan_problem, result_problem

Shape = tuple[int, ...]


def arrays_problem(arrays: list[tuple[str, object, Shape, str]], dtype: np.dtype,
                    inputs: tuple) -> str | None:
    """"WHAT: what is wrong" for the first of ``arrays`` (what, value, shape, whose shape) that
    is not an ndarray of its shape and ``dtype`` (``result_problem``), else for the first with a
    NaN where no input has one (``nan_problem``); None when all are right. A floating array more
    precise than ``dtype`` (float64 in a float32 check: ``np.zeros`` by habit) is no problem: it
    is compared cast to ``dtype`` (``in_dtype``), and the report says so (``dtype_slips``)."""
    for what, value, shape, like in arrays:
        wrong = result_problem(value, tuple(shape), dtype, like)
        if wrong is not None and _more_precise(value, dtype) and result_problem(
                value, tuple(shape), np.asarray(value).dtype, like) is None:
            _slips.add((what.rstrip().removeprefix("your "), str(np.asarray(value).dtype), str(dtype)))
        elif wrong is not None:
            return f"{what}: {wrong}"
    for what, value, _, _ in arrays:
        wrong = nan_problem(value, inputs)
        if wrong is not None:
            return f"{what}: {wrong}"
    return None


#: The dtype slips met while a check runs (``dtype_slips``): what, its dtype, the check's.
_slips: set[tuple[str, str, str]] = set()


def _more_precise(value: object, dtype: np.dtype) -> bool:
    """Whether ``value`` is a floating ndarray of a dtype more precise than ``dtype``."""
    return (isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating)
            and np.finfo(value.dtype).eps < np.finfo(dtype).eps)


def in_dtype(value: object, dtype: np.dtype) -> np.ndarray:
    """``value`` as an ndarray of ``dtype`` (a more precise one rounded to it, as ``arrays_problem``
    lets through)."""
    return np.asarray(value).astype(dtype, copy=False)


@contextmanager
def dtype_slips() -> Iterator[list[str]]:
    """The dtype slips of a ``with`` block's checks, one note each (filled when it ends): arrays
    your code returned more precise than the check's dtype, compared after rounding to it."""
    _slips.clear()
    found: list[str] = []
    try:
        yield found
    finally:
        for got, want in sorted({(got, want) for _, got, want in _slips}):
            arrays = sorted(what for what, g, w in _slips if (g, w) == (got, want))
            found.append(f"your {', '.join(arrays)} {'has' if len(arrays) == 1 else 'have'} dtype {got} "
                         f"in a {want} check: compared after rounding to {want}; the verdict is on "
                         "the values")
        _slips.clear()
