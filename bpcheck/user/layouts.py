"""Layouts: a user's arrays in their axes order, bpcheck's in the kind's (``manual.stack``).

A layout is a string of axis letters, one per axis: ``NCHW`` (bpcheck's images), ``NHWC``;
``NTD`` (bpcheck's sequences), ``NDT``; conv weights ``OIHW`` (bpcheck's: out, in, kernel rows,
kernel columns), ``HWIO``; dense ``OI`` (bpcheck's), ``IO``; a ``1`` is an axis of size one, so
``111O`` is a bias stored (1, 1, 1, C_out). The user's letters (1s aside) are a permutation of
the kind's: A_user = reshape(transpose(A_kind, π)), π the kind's position of each user letter.
"""

from __future__ import annotations

import numpy as np

#: bpcheck's data layout for samples of rank 1, 2 and 3 ((C,), (T, D), (C, H, W)).
DATA = {1: "NC", 2: "NTD", 3: "NCHW"}


def fits(user: str, kind: str) -> bool:
    """Whether ``user`` (1s aside) is a permutation of ``kind``'s letters."""
    letters = user.replace("1", "")
    return sorted(letters) == sorted(kind) and len(set(letters)) == len(letters)


def to_user(array: np.ndarray, kind: str, user: str) -> np.ndarray:
    """bpcheck's ``array`` (axes ``kind``) in the user's axes (``user``), a new array."""
    letters = user.replace("1", "")
    moved = np.transpose(array, [kind.index(c) for c in letters])
    sizes = iter(moved.shape)
    return np.array(moved.reshape([1 if c == "1" else next(sizes) for c in user]))


def user_shape(shape: tuple[int, ...], kind: str, user: str) -> tuple[int, ...]:
    """The shape an array of ``shape`` (axes ``kind``) has in the user's axes."""
    return tuple(1 if c == "1" else shape[kind.index(c)] for c in user)


def from_user(array: np.ndarray, kind: str, user: str) -> np.ndarray:
    """The user's ``array`` (axes ``user``, of the right shape) in bpcheck's axes ``kind``."""
    letters = user.replace("1", "")
    squeezed = np.asarray(array).reshape([n for n, c in zip(np.shape(array), user, strict=True) if c != "1"])
    return np.transpose(squeezed, [letters.index(c) for c in kind])
