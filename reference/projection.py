r"""Central finite differences along random directions: a handful of forwards per array, not
four per entry.

For an array θ and a unit direction v (Gaussian, normalised; seeded, so a finding repeats) the
step h is u^{1/3}·max(1, max_i |θ_i|) (u = 2^{-53}), or larger where the rounding bound
needs it (``along``); the four points θ + s·h·v, s ∈ {±1, ±2},
are rounded as they are stored, so each one's realised displacement d_s = fl(θ + s·h·v) − θ is
kept, and the derivative is taken along the realised direction w = (d_1 − d_{−1})/(2h):

.. math::
    D_h = \frac{L(θ + d_1) − L(θ + d_{−1})}{2h} = ∇L·w + \frac{h^2}{6} ∂_w^3L + O(h^4).

Its error is estimated as in ``reference.numeric`` (entry by entry there):
|D_{2h} − D_h|/3 (truncation; it also holds the ~u·|θ_i|/h by which the 2h pair's realised
direction differs from w), plus half of |Δ_{2h} − 2Δ_h|, Δ_h = (L(θ+d_1) − 2L(θ) + L(θ+d_{−1}))/h
(h³L⁗/2 where L is smooth, half the jump of the slope where a kink lies within 2h along w),
plus u·m·(|L(θ+d_1)| + |L(θ+d_{−1})| + T)/(2h) (rounding: m the work behind each value of L, T
the loss terms' own). A rule's gradient a is then compared as a·w against D_h
(``bpcheck.core.tolerances.projected_allowance``).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

UNIT_ROUNDOFF = np.finfo(np.float64).eps / 2
STEPS = np.array([1.0, -1.0, 2.0, -2.0])  # θ + s·h·v, the four evaluations per direction
#: Random directions per array: two independent chances to see an error along each.
DIRECTIONS = 2
#: The largest relative step: 2^-10, so that a kink is crossed seldom and curvature stays small.
LARGEST_STEP = 2.0**-10
#: The share of |D_h| the rounding bound may take before the step grows (``along``): with
#: SAFETY's 8 still 10 times below INFORMATIVE (1e−3), so that it leaves a row conclusive.
ROUNDING_SHARE = 1e-5
#: The grown step evaluated beside the first, where copies are cheap (``along``'s ``together``).
GROWTH = 32.0
#: Where a witness's gradient predicts |D_h| (``along``'s ``expected``), the first step h is kept
#: only if the rounding bound it predicts is within 1/MARGIN of its share: a prediction off by
#: up to this factor still needs no second call.
MARGIN = 2.0


@dataclass(frozen=True)
class Projected:
    """Finite differences of one array along ``directions.shape[0]`` realised directions."""

    directions: np.ndarray  # (K, *shape): w, the realised direction of each
    derivatives: np.ndarray  # (K,): D_h ≈ ∇L·w
    errors: np.ndarray  # (K,): the estimated |D_h − ∇L·w|
    step: float = 0.0  # h

    def along(self, gradient: np.ndarray) -> np.ndarray:
        """(K,): g·w of a full gradient ``g`` of the array, in float64."""
        return self.directions.reshape(len(self.directions), -1) @ np.asarray(gradient, np.float64).ravel()


def direction_seed(fingerprint: str) -> int:
    """A seed from a problem's fingerprint (hex digest): the same problem, the same directions."""
    return int(fingerprint[:15], 16)


def unit_directions(shape: tuple[int, ...], count: int, seed: int, name: str) -> np.ndarray:
    """(count, *shape) directions, each Gaussian and of unit 2-norm, from a generator seeded
    with (``seed``, crc32 of ``name``): each array its own, reproducibly."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    v = rng.standard_normal((count, int(np.prod(shape, dtype=np.int64))))
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return (v / np.where(norms > 0, norms, 1.0)).reshape(count, *shape)


def rounding_bound(size: float | np.ndarray, h: float | np.ndarray, work: float, terms: float
                   ) -> float | np.ndarray:
    """u·m·(|L(θ+d_1)| + |L(θ+d_{−1})| + T)/(2h), ``size`` the sum of the two |L|: D_h's
    rounding (module docstring)."""
    return UNIT_ROUNDOFF * work * (size + terms) / (2 * h)


def richardson(losses: np.ndarray, at_rest: float, h: float, work: float, terms: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(D_h, estimated error, the rounding part of it) from ``losses`` (4, K) at s = +1, −1,
    +2, −2 and L(θ) (module docstring); not finite where a loss is not."""
    with np.errstate(invalid="ignore", over="ignore"):
        d_h = (losses[0] - losses[1]) / (2 * h)
        d_2h = (losses[2] - losses[3]) / (4 * h)
        rounding = rounding_bound(np.abs(losses[0]) + np.abs(losses[1]), h, work, terms)
        bend_h = (losses[0] - 2 * at_rest + losses[1]) / h
        bend_2h = (losses[2] - 2 * at_rest + losses[3]) / (2 * h)
        error = np.abs(d_2h - d_h) / 3 + rounding + np.abs(bend_2h - 2 * bend_h) / 2
    return d_h, error, rounding


def along(evaluate: Callable[[dict[str, np.ndarray]], dict], values: dict[str, np.ndarray],
          directions: dict[str, np.ndarray], at_rest: float, work: float, terms: float,
          together: bool = False, first: dict[str, float] | None = None,
          expected: dict[str, np.ndarray] | None = None) -> dict[str, Projected]:
    """Finite differences of each array of ``values`` along its ``directions`` (K, *shape);
    ``evaluate`` takes, per array, its perturbed copies (``points``) and returns their losses
    (all arrays in one call, where the loss can batch them), or (losses, ε) with ε per copy the
    largest relative error of the step as it landed inside (``reference.numeric``'s z + s·h·Δz
    rounded at a large z): then ε·max(|D_h|, |D_2h|) joins the estimate.

    The step is h = ∛u·max(1, max_i |θ_i|), as entry by entry; where the rounding bound then
    exceeds ROUNDING_SHARE of the largest |D_h|, the step grows (the bound goes as 1/h), at most
    to LARGEST_STEP·max(1, max_i |θ_i|): by that ratio, in a second call; or, ``together``
    (where copies cost little beside a call), to GROWTH·h, evaluated in the first call beside h.
    A step no larger than it must be, as a larger one crosses more kinks (a relu's, a
    max-pool's ties) and bends. ``first``: the steps another pass over the same loss settled on,
    taken as they are (one call). ``expected``: per array, a gradient that predicts |D_h| (another
    witness's): together's choice between h and GROWTH·h made before evaluating (one step per
    array; ``predicted_ratio``), and GROWTH·h in a second call where h was evaluated and failed."""
    scale = {name: max(1.0, float(np.max(np.abs(theta), initial=0.0))) for name, theta in values.items()}
    largest = {name: LARGEST_STEP * scale[name] for name in directions}
    steps = {name: [float(np.cbrt(UNIT_ROUNDOFF)) * scale[name]] for name in directions}
    grown = {name: min(GROWTH * h, largest[name]) for name, [h] in steps.items()}
    if first is not None:
        steps, together, expected = {name: [first[name]] for name in directions}, True, None  # no growing
    elif expected is not None:  # together's choice, h or GROWTH·h, as predicted
        fits = {name: MARGIN * predicted_ratio(h, directions[name], expected[name], at_rest, work, terms) <= 1
                for name, [h] in steps.items()}
        steps, together = {name: [h if fits[name] else grown[name]] for name, [h] in steps.items()}, True
    elif together:
        steps = {name: [h, grown[name]] for name, [h] in steps.items()}
    found, todo = {}, list(directions)
    for _ in range(2):
        copies = {name: np.empty((len(steps[name]), len(STEPS), *directions[name].shape)) for name in todo}
        moved = {name: [points(values[name], directions[name], h, copies[name][i])
                        for i, h in enumerate(steps[name])] for name in todo}
        losses = evaluate({name: block.reshape(-1, *values[name].shape) for name, block in copies.items()})
        counts = {name: len(directions[name]) for name in todo}
        d_h, estimate, ratios = _estimates(losses, todo, steps, counts, at_rest, work, terms)
        again, group, column = [], 0, 0  # the array's first step's, in _estimates' order
        for name in todo:
            tries, count = len(steps[name]), counts[name]
            for i, h in enumerate(steps[name]):
                columns = slice(column + i * count, column + (i + 1) * count)
                found[name] = Projected(moved[name][i][1], d_h[columns].copy(), estimate[columns].copy(), h)
                ratio = float(ratios[group + i])
                if not (np.isfinite(ratio) and ratio > 1 and h < largest[name]):
                    break  # this step will do; else the next, if any
            else:
                if expected is not None and h < grown[name]:  # mispredicted: GROWTH·h, as together
                    steps[name] = [grown[name]]
                    again.append(name)
                elif not together and tries == 1:
                    steps[name] = [min(h * ratio, largest[name])]
                    again.append(name)
            group, column = group + tries, column + tries * count
        if not again:
            break
        todo = again
    return found


def predicted_ratio(h: float, directions: np.ndarray, gradient: np.ndarray, at_rest: float, work: float,
                    terms: float) -> float:
    """``rounding_bound`` at step h with both losses taken as L(θ), over ROUNDING_SHARE of
    max_k |g·v_k|, the largest |D_h| that gradient g predicts along the directions v_k (inf where
    it predicts none)."""
    predicted = float(np.max(np.abs(directions.reshape(len(directions), -1)
                                    @ np.asarray(gradient, np.float64).ravel()), initial=0.0))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = rounding_bound(2 * abs(at_rest), h, work, terms) / (ROUNDING_SHARE * predicted)
    return float(ratio) if np.isfinite(ratio) else np.inf


def _estimates(losses: dict, names: list[str], steps: dict[str, list[float]], counts: dict[str, int],
               at_rest: float, work: float, terms: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``richardson`` of every array's every step at once, its columns array by array and step
    by step (``counts[name]`` directions each): (D_h, its estimate with ε·max(|D_h|, |D_2h|)
    added, and per array and step the largest rounding over ROUNDING_SHARE of the largest |D_h|)
    — the numbers one call per array and step gives, column by column."""
    values, offs, hs = [], [], []
    for name in names:
        tries, count = len(steps[name]), counts[name]
        value, off = losses[name] if isinstance(losses[name], tuple) else (losses[name], 0.0)
        value = np.asarray(value, np.float64).reshape(tries, len(STEPS), count)
        values.append(value.transpose(1, 0, 2).reshape(len(STEPS), tries * count))
        offs.append(np.broadcast_to(off, value.size).reshape(tries, len(STEPS), count).max(axis=1).ravel())
        hs.append(np.repeat(steps[name], count))
    value, off, h = np.concatenate(values, axis=1), np.concatenate(offs), np.concatenate(hs)
    d_h, error, rounding = richardson(value, at_rest, h, work, terms)
    starts = np.cumsum([0] + [counts[name] for name in names for _ in steps[name]])[:-1]
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):  # z + s·h·Δz rounded at a large z
        stepped = off * np.maximum(np.abs(d_h), np.abs(value[2] - value[3]) / (4 * h))
        ratios = (np.maximum.reduceat(rounding, starts)
                  / (ROUNDING_SHARE * np.maximum.reduceat(np.abs(d_h), starts)))
    return d_h, error + stepped, ratios


def points(theta: np.ndarray, directions: np.ndarray, h: float,
           out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(the 4·K perturbed arrays θ + s·h·v as stored, in STEPS-major order, the realised
    directions w (K, *shape)); ``out``: where to put the arrays, (4, K, *shape)."""
    moved = np.multiply.outer(STEPS * h, directions, out=out)  # (4, K, *shape)
    moved += theta
    realised = (moved[0] - theta) - (moved[1] - theta)
    return moved.reshape(-1, *theta.shape), realised / (2 * h)


def directional_differences(loss: Callable[[dict[str, np.ndarray]], float | np.ndarray],
                            values: dict[str, np.ndarray], work: float, terms: float, seed: int,
                            count: int = DIRECTIONS, vectorised: bool = False,
                            names: list[str] | None = None, together: bool | None = None,
                            first: dict[str, float] | None = None,
                            expected: dict[str, np.ndarray] | None = None) -> dict[str, Projected]:
    """Finite differences of ``loss`` along ``count`` random directions of each array (of
    ``names``, default all). With ``vectorised``, ``loss`` takes the arrays with a leading
    axis of copies and returns each copy's L (one call for all arrays); else one array set at
    a time. ``together`` (default: ``vectorised``), ``first`` and ``expected`` as ``along`` takes them. The
    caller's arrays are not touched."""
    current = {name: np.array(value, dtype=np.float64) for name, value in values.items()}
    at_rest = float(np.asarray(loss({k: v[None] for k, v in current.items()}) if vectorised
                               else loss(current)).reshape(-1)[0])

    def evaluate(moved: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not vectorised:
            return {name: np.array([float(loss(current | {name: copy})) for copy in copies])
                    for name, copies in moved.items()}
        sizes = [len(copies) for copies in moved.values()]
        batch = {k: np.repeat(v[None], sum(sizes), axis=0) for k, v in current.items()}
        for start, (name, copies) in zip(np.cumsum([0, *sizes[:-1]]), moved.items(), strict=True):
            batch[name][start:start + len(copies)] = copies
        out = np.asarray(loss(batch), dtype=np.float64)
        return dict(zip(moved, np.split(out, np.cumsum(sizes)[:-1]), strict=True))

    chosen = names or list(current)
    return along(evaluate, current, {name: unit_directions(current[name].shape, count, seed, name)
                                     for name in chosen}, at_rest, work, terms,
                 vectorised if together is None else together, first, expected)

