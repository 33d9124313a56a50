"""Layouts: a user's arrays in their axes order, bpcheck's in the kind's (``manual.stack``).

A layout is a string of axis letters, one per axis: ``NCHW`` (bpcheck's images), ``NHWC``;
``NTD`` (bpcheck's sequences), ``NDT``; conv weights ``OIHW`` (bpcheck's: out, in, kernel rows,
kernel columns), ``HWIO``; dense ``OI`` (bpcheck's), ``IO``; a ``1`` is an axis of size one, so
``111O`` is a bias stored (1, 1, 1, C); an ``N`` the kind's array lacks is the batch, the array
repeated for each sample (a recurrent layer's h0 given as (N, H): ``NH``), whose gradient is the
sum over the samples. The user's other letters are a permutation of the kind's:
A_user = broadcast(reshape(transpose(A_kind, π))), π the kind's position of each user letter.
"""

from __future__ import annotations

import numpy as np

#: bpcheck's data layout for samples of rank 1, 2 and 3 ((C,), (T, D), (C, H, W)).
DATA = {1: "NC", 2: "NTD", 3: "NCHW"}


def _letters(user: str, kind: str) -> str:
    """The user's letters that are the kind's axes (1s and a batch N the kind lacks aside)."""
    return "".join(c for c in user if c != "1" and (c != "N" or "N" in kind))


def fits(user: str, kind: str) -> bool:
    """Whether ``user`` (1s and a batch N aside) is a permutation of ``kind``'s letters."""
    letters = _letters(user, kind)
    return sorted(letters) == sorted(kind) and len(set(letters)) == len(letters) and user.count("N") <= 1


def to_user(array: np.ndarray, kind: str, user: str, n: int = 1) -> np.ndarray:
    """bpcheck's ``array`` (axes ``kind``) in the user's axes (``user``; a batch of ``n``), a new
    array."""
    letters = _letters(user, kind)
    moved = np.transpose(array, [kind.index(c) for c in letters])
    sizes = iter(moved.shape)
    shape = [1 if c == "1" or (c == "N" and "N" not in kind) else next(sizes) for c in user]
    full = [n if c == "N" and "N" not in kind else size for c, size in zip(user, shape, strict=True)]
    return np.array(np.broadcast_to(moved.reshape(shape), full))


def user_shape(shape: tuple[int, ...], kind: str, user: str, n: int = 1) -> tuple[int, ...]:
    """The shape an array of ``shape`` (axes ``kind``) has in the user's axes."""
    return tuple(1 if c == "1" else n if c == "N" and "N" not in kind else shape[kind.index(c)] for c in user)


def from_user(array: np.ndarray, kind: str, user: str) -> np.ndarray:
    """The user's ``array`` (axes ``user``, of the right shape) in bpcheck's axes ``kind``: a
    batch N the kind lacks summed over."""
    array = np.asarray(array)
    if "N" in user and "N" not in kind:
        array = array.sum(axis=user.index("N"), keepdims=True)
    letters = _letters(user, kind)
    squeezed = array.reshape([n for n, c in zip(array.shape, user, strict=True)
                              if c != "1" and (c != "N" or "N" in kind)])
    return np.transpose(squeezed, [letters.index(c) for c in kind])


def gate_order(array: np.ndarray, axis: int, kind: str, user: str) -> np.ndarray:
    """``array`` with its gate blocks along ``axis`` (gates·H entries, in the order ``kind``)
    put in the order ``user`` (``"ifgo"`` → ``"ifog"``)."""
    blocks = np.split(array, len(kind), axis=axis)
    return np.concatenate([blocks[kind.index(g)] for g in user], axis=axis)
