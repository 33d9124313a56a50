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


def central_differences(loss: Callable[[dict[str, np.ndarray]], float], values: dict[str, np.ndarray],
                        work: int, terms: int, entries: np.ndarray | None = None
                        ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(D_h, estimated |D_h − ∂L|) for every entry of every array in ``values`` — or only the
    ``entries``, flat indices into the arrays laid end to end, the others NaN. Float64 copies
    are perturbed; the caller's arrays are not touched."""
    current = {name: np.array(value, dtype=np.float64) for name, value in values.items()}
    grads, errors, offset = {}, {}, 0
    for name, array in current.items():
        flat = array.reshape(-1)
        d_h, error = np.full(flat.size, np.nan), np.full(flat.size, np.nan)
        chosen = range(flat.size) if entries is None else entries[
            (entries >= offset) & (entries < offset + flat.size)] - offset
        offset += flat.size
        for i in chosen:
            theta = flat[i]
            h = np.cbrt(UNIT_ROUNDOFF) * max(1.0, abs(theta))
            h = (theta + h) - theta  # exactly representable steps
            losses = []
            for factor in STEPS:
                flat[i] = theta + factor * h
                losses.append(loss(current))
            flat[i] = theta
            d_h[i] = (losses[0] - losses[1]) / (2 * h)
            d_2h = (losses[2] - losses[3]) / (4 * h)
            rounding = UNIT_ROUNDOFF * work * (abs(losses[0]) + abs(losses[1]) + terms) / (2 * h)
            error[i] = abs(d_2h - d_h[i]) / 3 + rounding
        grads[name], errors[name] = d_h.reshape(array.shape), error.reshape(array.shape)
    return grads, errors
