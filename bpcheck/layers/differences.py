"""Finite differences of a network of layers' loss, float64: entry by entry
(``reference.differences``) or along random directions (``reference.projection``), and entry
by entry where torch parts from the directions (``placed``)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from bpcheck.core.projected import PLACE_ENTRIES, parts
from bpcheck.layers.allowances import stack_rounding_steps
from bpcheck.layers.problem import StackProblem
from manual.spec import Params
from reference.differences import central_differences
from reference.projection import DIRECTIONS, direction_seed, directional_differences


def inputs(problem: StackProblem) -> Params:
    """``{"x": x}``, or nothing for integer tokens (which have no gradient)."""
    return {} if problem.stack.tokens else {"x": problem.x}


def _terms(problem: StackProblem) -> int:
    return problem.n_samples * math.prod(problem.stack.shapes[-1])


def differences(loss, problem: StackProblem, sample: int | None = None, copies: int = 0,
                among: np.ndarray | None = None, progress=None) -> tuple[Params, Params]:
    """Finite differences of ``loss`` over every parameter and x, float64 (their estimate), or
    over ``sample`` entries drawn at random with seed 0 — from ``among`` (flat indices, the
    parameters then x) if given, else from all."""
    p = problem.in_float64()
    values = p.params | inputs(p)
    pool = np.arange(sum(v.size for v in values.values())) if among is None else np.asarray(among)
    entries = None if (sample is None or sample >= pool.size) and among is None else np.sort(
        np.random.default_rng(0).choice(pool, size=min(sample or pool.size, pool.size), replace=False))
    return central_differences(loss, values, stack_rounding_steps(p.stack, p.n_samples), _terms(p), entries,
                               copies, progress)


def _copies(problem: StackProblem) -> int:
    """Perturbed copies per vectorised call: about 2^22 floats of inputs and parameters."""
    return max(4, min(1024, 2**22 // (problem.n_params + problem.x.size)))


def projected(loss, problem: StackProblem, vectorised: bool, count: int = DIRECTIONS,
              together: bool | None = None, first: dict[str, float] | None = None,
              expected: Params | None = None) -> dict:
    """Finite differences of ``loss`` along ``count`` random directions of each parameter and x
    (``reference.projection``; ``vectorised``: ``loss`` takes copies on a leading axis;
    ``together``, ``first``, ``expected``: as ``reference.projection.along`` takes them), seeded
    by the problem's fingerprint, float64."""
    p = problem.in_float64()
    return directional_differences(loss, p.params | inputs(p), stack_rounding_steps(p.stack, p.n_samples),
                                   _terms(p), direction_seed(problem.fingerprint()), count,
                                   vectorised=vectorised, together=together, first=first, expected=expected)


def placed(truth, p64: StackProblem, loss):
    """The truth with per-entry finite differences of torch's forward on PLACE_ENTRIES random
    entries of each gradient where torch disagrees with the projection (the witnesses' rows
    then show where they part)."""
    torch_g = truth.gradients["torch"]
    parted = [name for name in truth.projections["numeric"]
              if parts(truth, "numeric", name, torch_g[name], truth.witness_allowance)]
    if not parted:
        return truth
    values = p64.params | inputs(p64)
    starts = dict(zip(values, np.cumsum([0] + [v.size for v in values.values()]), strict=False))
    among = np.concatenate([starts[name] + np.arange(values[name].size) for name in parted])
    fd, error = differences(loss, p64, PLACE_ENTRIES * len(parted), _copies(p64), among)
    return replace(truth, gradients=truth.gradients | {"numeric": fd}, errors={"numeric": error})


def placing_rows(name: str, problem: StackProblem, truth, rows: list, gradients: Params,
                 allowance: Params, loss) -> list:
    """Where the rule's gradient differs from torch's on a parameter (or x) that finite
    differences saw only by projection: per-entry differences of ``loss`` (torch's forward,
    float64) on its PLACE_ENTRIES entries that differ most, a row each, so the report says
    whether finite differences side with torch or with the rule there."""
    from bpcheck.core.compare import gradient_row  # beside the rows it adds to

    torch_g, numeric = truth.gradients["torch"], truth.gradients.get("numeric", {})
    differing = sorted({row.parameter for row in rows if row.differs and row.quantity == "gradient"
                        and row.witness == "torch" and "numeric" in truth.projections
                        and not np.isfinite(numeric.get(row.parameter, np.nan)).any()})
    if not differing:
        return []
    p64 = problem.in_float64()
    values = p64.params | inputs(p64)
    starts = dict(zip(values, np.cumsum([0] + [v.size for v in values.values()]), strict=False))
    with np.errstate(invalid="ignore"):
        among = np.concatenate([starts[key] + np.argsort(-np.nan_to_num(np.abs(
            np.asarray(gradients[key], np.float64) - torch_g[key]), nan=np.inf).ravel(),
            kind="stable")[:PLACE_ENTRIES] for key in differing])
    fd, error = differences(loss, p64, None, _copies(p64), among)
    seen = replace(truth, gradients=truth.gradients | {"numeric": fd}, errors={"numeric": error})
    return [gradient_row(name, seen, "numeric", key, gradients[key], allowance) for key in differing]
