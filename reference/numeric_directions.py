"""The finite-difference witness of the MLP family along random directions of each parameter
(``reference.projection`` gives the formulas; ``reference.numeric`` the forward pass).

Moving W_k or b_k moves z_k on: the layers before k are shared, and the 4·K perturbed copies of
z_k (each computed from its perturbed array as stored) go through the later layers in one
matrix product. The penalty is recomputed per copy over the moved array's penalised entries.
"""

from __future__ import annotations

import numpy as np

from manual.spec import Params, Spec
from reference.numeric import _data_loss, _forward, _output_from, _rows, _term_rounding, _weights
from reference.projection import DIRECTIONS, Projected, along, unit_directions


def penalised(spec: Spec, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Which entries of parameter ``name`` ½λ‖θ‖² includes: a weight's input columns, and its
    bias column or vector only with ``l2_biases``."""
    if name.startswith("b"):
        return np.full(shape, spec.l2_biases)
    inputs = spec.sizes[int(name[1:]) - 1]
    return np.broadcast_to(np.arange(shape[1]) < inputs + int(spec.l2_biases), shape)


def directional_with_error(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, seed: int,
                           count: int = DIRECTIONS) -> dict[str, Projected]:
    """Per parameter, D_h along ``count`` random unit directions (seeded by ``seed`` and the
    name) and its estimated error, in float64."""
    weights, x, y = _weights(spec, params), _rows(spec, X), _rows(spec, Y)
    inputs, _, output = _forward(spec, weights, x)
    values = {name: np.asarray(value, np.float64) for name, value in params.items()}
    mask = {name: penalised(spec, name, value.shape) for name, value in values.items()}
    penalty = {name: 0.5 * spec.l2 * float(np.sum(np.square(value[mask[name]])))
               for name, value in values.items()}
    work = (1 + max(spec.sizes)) * spec.depth * x.shape[0]
    # each loss term rounds by ~u of its own size, 1 in ``_term_rounding``'s units: a mean's
    # terms are 1/N of that size
    terms = _term_rounding(spec, output) / (x.shape[0] if spec.reduction == "mean" else 1)
    def z_of(name: str, moved: np.ndarray) -> np.ndarray:
        k, (W, b) = int(name[1:]), weights[int(name[1:]) - 1]
        if name.startswith("W"):
            z = np.matmul(inputs[k - 1][None], np.swapaxes(moved, 1, 2))
            return z if b is None else z + b
        return (inputs[k - 1] @ W.T)[None] + moved[:, None, :]

    def loss_of(name: str, moved: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """L of each copy, and ε: the largest relative error of its step as it lands in z_k
        (realised (z + Δz) − z against Δz computed from the step alone, as ``reference.numeric``)."""
        k = int(name[1:])
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # not finite: not judged
            z, rest = z_of(name, moved), z_of(name, values[name][None])
            step = moved - values[name]  # the shift of z_k it intends, with no z_k added
            intended = (np.matmul(inputs[k - 1][None], np.swapaxes(step, 1, 2)) if name.startswith("W")
                        else np.broadcast_to(step[:, None, :], z.shape))
            off = np.where(intended != 0, np.abs((z - rest) - intended) / np.abs(intended), 0.0)
            data = _data_loss(spec, _output_from(spec, weights, k, z), y)
            moved_penalty = 0.5 * spec.l2 * np.sum(np.square(np.where(mask[name], moved, 0.0)),
                                                   axis=tuple(range(1, moved.ndim)))
        return (data + (sum(penalty.values()) - penalty[name]) + moved_penalty,
                off.reshape(len(moved), -1).max(axis=1, initial=0.0))

    last = list(values)[-1]
    rest = float(loss_of(last, values[last][None])[0][0])  # L(θ) the way the moved copies are
    return along(lambda moved: {name: loss_of(name, copies) for name, copies in moved.items()}, values,
                 {name: unit_directions(theta.shape, count, seed, name) for name, theta in values.items()},
                 rest, work, terms, together=True)

