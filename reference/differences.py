r"""Central finite differences of any float64 loss, with an error estimate per entry.

For each entry θ_i of the named arrays the step is h_i = u^{1/3}·max(1, |θ_i|) (u = 2^{-53}),
rounded so that θ_i ± h_i is exact, and

.. math::
    D_h = \frac{L(θ + h e_i) − L(θ − h e_i)}{2h} = ∂_iL + \frac{h^2}{6} ∂_i^3L + O(h^4).

Since D_{2h} − D_h ≈ 3·(h²/6)·∂³L, the truncation error of D_h is estimated as
|D_{2h} − D_h|/3; the rounding error as u·m·(|L(θ+h)| + |L(θ−h)| + T)/(2h), with m the work
behind each value of L and T the loss terms' own rounding (one u per term, even where L
cancels). Across a kink (a relu at 0, a max-pool's tie) the four values disagree and the
estimate grows with them. The loss is a function of the arrays only, so the same code
differences a witness's forward pass and a rule's own.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

TITLE = "finite differences"
UNIT_ROUNDOFF = np.finfo(np.float64).eps / 2
STEPS = (1.0, -1.0, 2.0, -2.0)  # θ_i + factor·h_i, the four evaluations per entry


def central_differences(loss: Callable[[dict[str, np.ndarray]], float | np.ndarray],
                        values: dict[str, np.ndarray], work: int, terms: int,
                        entries: np.ndarray | None = None, copies: int = 0,
                        progress: Callable[[int, int], None] | None = None
                        ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(D_h, estimated |D_h − ∂L|) for every entry of every array in ``values`` — or only the
    ``entries``, flat indices into the arrays laid end to end, the others NaN. With ``copies``
    > 0, ``loss`` takes the arrays with a leading axis of up to that many perturbed copies and
    returns each copy's L (one vectorised call per block of entries); else one array set at a
    time. The caller's arrays are not touched. ``progress(done, total)`` after each block."""
    # C order: reshape(-1) below must be a view (a transposed array's is a copy: no step taken)
    current = {name: np.array(value, dtype=np.float64, order="C") for name, value in values.items()}
    sizes = [array.size for array in current.values()]
    chosen = np.arange(sum(sizes)) if entries is None else np.asarray(entries)
    owner = np.searchsorted(np.cumsum(sizes), chosen, side="right")  # which array each entry is in
    local = chosen - np.concatenate([[0], np.cumsum(sizes)])[owner]
    names = list(current)
    theta = np.array([current[names[o]].reshape(-1)[i] for o, i in zip(owner, local, strict=True)])
    h = np.cbrt(UNIT_ROUNDOFF) * np.maximum(1.0, np.abs(theta))
    h = (theta + h) - theta  # exactly representable steps
    losses = np.empty((chosen.size, len(STEPS)))
    block = max(1, copies // len(STEPS)) if copies else 1
    for start in range(0, chosen.size, block):
        part = slice(start, min(start + block, chosen.size))
        losses[part] = _block(loss, current, names, owner[part], local[part], theta[part], h[part],
                              copies > 0)
        if progress is not None:
            progress(part.stop, chosen.size)
    d_h = (losses[:, 0] - losses[:, 1]) / (2 * h)
    d_2h = (losses[:, 2] - losses[:, 3]) / (4 * h)
    rounding = UNIT_ROUNDOFF * work * (np.abs(losses[:, 0]) + np.abs(losses[:, 1]) + terms) / (2 * h)
    error = np.abs(d_2h - d_h) / 3 + rounding
    grads = {name: np.full(array.shape, np.nan) for name, array in current.items()}
    errors = {name: np.full(array.shape, np.nan) for name, array in current.items()}
    for k, (o, i) in enumerate(zip(owner, local, strict=True)):
        grads[names[o]].reshape(-1)[i], errors[names[o]].reshape(-1)[i] = d_h[k], error[k]
    return grads, errors


def _block(loss, current, names, owner, local, theta, h, vectorised: bool) -> np.ndarray:
    """L at θ_i + factor·h_i for each entry of the block and each of STEPS: (entries, 4)."""
    if not vectorised:
        out = np.empty((len(owner), len(STEPS)))
        for k, (o, i) in enumerate(zip(owner, local, strict=True)):
            flat = current[names[o]].reshape(-1)
            for j, factor in enumerate(STEPS):
                flat[i] = theta[k] + factor * h[k]
                out[k, j] = loss(current)
            flat[i] = theta[k]
        return out
    count = len(owner) * len(STEPS)
    copies = {name: np.repeat(array[None], count, axis=0) for name, array in current.items()}
    for k, (o, i) in enumerate(zip(owner, local, strict=True)):
        flat = copies[names[o]].reshape(count, -1)
        for j, factor in enumerate(STEPS):
            flat[k * len(STEPS) + j, i] = theta[k] + factor * h[k]
    return np.asarray(loss(copies)).reshape(len(owner), len(STEPS))
