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


def bounded(values: np.ndarray) -> bool:
    """Whether every entry is within ±1e100, so that a sum of squares of them is finite."""
    return max(-float(np.min(values, initial=0.0)), float(np.max(values, initial=0.0))) < 1e100  # NaN: no


def penalty_of(spec: Spec, mask: dict[str, np.ndarray], name: str, moved: np.ndarray) -> np.ndarray:
    """½λ‖θ‖² of each copy of parameter ``name`` over its penalised entries (``mask``, made
    only with a penalty): without one (λ = 0) 0·Σθ², which is 0 (as signed) where Σθ² is
    finite (``bounded``)."""
    if spec.l2 == 0 and bounded(moved):
        return np.full(len(moved), 0.5 * spec.l2 * 0.0)
    chosen = mask[name] if name in mask else penalised(spec, name, moved.shape[1:])
    return 0.5 * spec.l2 * np.sum(np.square(np.where(chosen, moved, 0.0)), axis=tuple(range(1, moved.ndim)))


def directional_with_error(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, seed: int,
                           count: int = DIRECTIONS, expected: Params | None = None) -> dict[str, Projected]:
    """Per parameter, D_h along ``count`` random unit directions (seeded by ``seed`` and the
    name) and its estimated error, in float64; ``expected``: a gradient that predicts each D_h's
    size, so that one step per parameter does (``reference.projection.along``)."""
    weights, x, y = _weights(spec, params), _rows(spec, X), _rows(spec, Y)
    inputs, _, output = _forward(spec, weights, x)
    values = {name: np.asarray(value, np.float64) for name, value in params.items()}
    mask = {name: penalised(spec, name, value.shape) for name, value in values.items()} if spec.l2 else {}
    penalty = {name: 0.5 * spec.l2 * 0.0 if spec.l2 == 0 and bounded(value) else  # as penalty_of
               0.5 * spec.l2 * float(np.sum(np.square(value[penalised(spec, name, value.shape)])))
               for name, value in values.items()}
    work = (1 + max(spec.sizes)) * spec.depth * x.shape[0]
    # each loss term rounds by ~u of its own size, 1 in ``_term_rounding``'s units: a mean's
    # terms are 1/N of that size
    terms = _term_rounding(spec, output) / (x.shape[0] if spec.reduction == "mean" else 1)

    def z_of(name: str, moved: np.ndarray) -> np.ndarray:
        k, (W, b) = int(name[1:]), weights[int(name[1:]) - 1]
        if name.startswith("W"):
            z = np.matmul(inputs[k - 1][None], np.swapaxes(moved, 1, 2))
            if b is not None:
                z += b
            return z
        return (inputs[k - 1] @ W.T)[None] + moved[:, None, :]

    at_rest: dict[str, np.ndarray] = {}  # z_k from each array unmoved, as its copies compute it

    def loss_of(name: str, moved: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """L of each copy, and ε: the largest relative error of its step as it lands in z_k
        (realised (z + Δz) − z against Δz computed from the step alone, as ``reference.numeric``),
        with as few arrays of the copies' size as it takes (each a fresh allocation's page faults)."""
        k = int(name[1:])
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # not finite: not judged
            z = z_of(name, moved)
            data = _data_loss(spec, _output_from(spec, weights, k, z), y)
            if name not in at_rest:
                at_rest[name] = z_of(name, values[name][None])
            step = moved - values[name]  # the shift of z_k it intends, with no z_k added
            intended = (np.matmul(inputs[k - 1][None], np.swapaxes(step, 1, 2)) if name.startswith("W")
                        else step[:, None, :])  # a bias's: the same in every sample
            moving = intended != 0  # ε over these: |(z − rest) − intended| / |intended|
            z -= at_rest[name]
            z -= intended
            np.divide(np.abs(z, out=z), np.abs(intended, out=intended), out=z, where=moving)
            off = np.max(z.reshape(len(moved), -1), axis=1, initial=0.0,
                         where=np.broadcast_to(moving, z.shape).reshape(len(moved), -1))
        return data + (sum(penalty.values()) - penalty[name]) + penalty_of(spec, mask, name, moved), off

    last = list(values)[-1]  # L(θ) the way the moved copies are: as loss_of takes θ itself
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        at_rest[last] = z_of(last, values[last][None])
        data = _data_loss(spec, _output_from(spec, weights, int(last[1:]), at_rest[last]), y)
        rest = float((data + (sum(penalty.values()) - penalty[last])
                      + penalty_of(spec, mask, last, values[last][None]))[0])
    return along(lambda moved: {name: loss_of(name, copies) for name, copies in moved.items()}, values,
                 {name: unit_directions(theta.shape, count, seed, name) for name, theta in values.items()},
                 rest, work, terms, together=True, expected=expected)

