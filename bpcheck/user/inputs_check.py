r"""Check a ``like="attention:..."`` layer with several named inputs (``bpcheck.user.like_inputs``).

Hypothesis draws N = 2 samples, a query of Tq = 1 or 3 steps (3 if causal) and keys/values of
Tk = 2 or 4 steps (over one key the softmax is 1 and W_q, b_q, W_k get exactly 0 whatever a layer
computes: witnesses differ by rounding around that exact 0, seen), D =
heads·d features (d = 1 or 2: with d = 1 a missing 1/√d is invisible), the parameters, a random
dout G, in float64 or float32; ``length=`` pins Tq = Tk. On each draw your
forward and backward run (your names, layouts, calling style); each input's gradient and each
parameter's is compared, under its own name, with

* torch: autograd of Σ G ⊙ ``F.multi_head_attention_forward(query, key, value, …)``
  (``reference.torch_sequence.attend``), in float64;
* jax: ``jax.vjp`` of the same function from ``jnp`` building blocks (``reference.jax_stack.attend``);
* finite differences of your own forward's Σ G ⊙ out over every input and parameter
  (``reference.differences``; up to ``ENTRIES`` entries drawn at random), on a draw where a
  gradient differs from torch's or jax's: they tell a wrong backward from a wrong forward, and
  cost most of a draw's time where nothing differs (2.5 s of 100 draws, measured);

and your forward's output with torch's. A key bias of yours (``bpcheck.user.like.KEY_BIAS``) is
given values, and its gradient held to 0 (``bpcheck.user.inputs_witnesses.key_bias_row``); one
named input (``inputs=("x",)``) is self-attention, Tq = Tk. The allowances are measured as for every check
(``bpcheck.core.tolerances``): torch reruns with every input, parameter and G moved by 1 ± ρ
(ρ = 2u_d), the result's own rounding, and torch's own answer in float32 (in a float64 check,
times u_64/u_32, the rounding of the layer's insides the reruns do not perturb; where float32
is off by ``FLOAT32_LOST`` of the gradient's largest entry, that entry is not judged: of the
entry itself, as ``bpcheck.layers.allowances.lost``, would leave out every entry that cancels):
e_i = SAFETY·(s_i + SPREAD·max_j s_j) + floor. Finite differences add 8× their own error estimate.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from bpcheck.core.compare import Row, RuleReport, row_verdict
from bpcheck.core.metrics import discrepancy
from bpcheck.core.tolerances import (
    FLOAT32_LOST,
    SENSITIVITY_RUNS,
    rerun_perturbation,
    rounding_steps,
    sensitivity,
    spread_allowance,
    underflow_floor,
    unit_roundoff,
)
from bpcheck.user.guards import guard
from bpcheck.user.inputs_problem import InputsProblem
from bpcheck.user.inputs_witnesses import jax_run, key_bias_row, key_bias_terms, shown, torch_run
from bpcheck.user.layouts import DATA, from_user, to_user, user_shape
from bpcheck.user.like import KEY_BIAS
from bpcheck.user.like_inputs import inputs_pair, roles
from bpcheck.user.like_pair import ours, theirs
from bpcheck.user.results import arrays_problem, in_dtype

#: Entries of the inputs and parameters your forward is differenced on, at most (seed 0).
ENTRIES = 256
#: The sizes drawn: N = BATCH samples (one batch size, as for like=: each shape is one jax
#: compile), Tq and Tk steps, d features per head.
BATCH, QUERY_STEPS, KEY_STEPS, HEAD_FEATURES = 2, (1, 3), (2, 4), (1, 2)  # 8 shapes: 8 compiles
OWN_FORWARD = "finite differences of your forward"


@st.composite
def inputs_problems(draw, layer) -> InputsProblem:
    """A draw (module docstring)."""
    like = layer.declared
    dtype = draw(st.sampled_from(["float64", "float32"]))
    # causal: query t sees keys ≤ t, so one query step sees one key (the same exact zeros)
    queries = QUERY_STEPS[1:] if like.layer.causal else QUERY_STEPS
    n, steps, keys = BATCH, draw(st.sampled_from(queries)), draw(st.sampled_from(KEY_STEPS))
    if len(like.inputs) == 1 or layer.length is not None:  # self-attention; length= pins both
        steps = keys = layer.length or keys
    width = like.layer.heads * draw(st.sampled_from(HEAD_FEATURES))
    scale = draw(st.sampled_from([1.0, 0.5, 2.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    query = roles(like.inputs)[0]

    def rounded(a: np.ndarray) -> np.ndarray:
        return a.astype(dtype).astype(np.float64)

    arrays = {name: rounded(scale * rng.standard_normal((n, steps if name == query else keys, width)))
              for name in like.inputs}
    params = {k: rounded(rng.uniform(-1, 1, (width, width) if k.startswith("W") else width)
                         / (np.sqrt(width) if k.startswith("W") else 2))
              for k in like.names}
    return InputsProblem(like.text, dtype, arrays, params, rounded(rng.standard_normal((n, steps, width))))


def user_run(layer, problem: InputsProblem, dtype: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Your forward and backward in ``dtype``, guarded: (out, gradients by your names) in
    bpcheck's layouts and the kind's parameter layouts."""
    like, name = layer.declared, layer.name
    forward, backward = inputs_pair(like.inputs, like.order, layer.forward, layer.backward)
    layouts = dict(zip(like.inputs, like.inputs_layout, strict=True))
    query = roles(like.inputs)[0]
    n = problem.dout.shape[0]
    arrays = {k: to_user(a.astype(dtype), DATA[2], layouts[k]) for k, a in problem.arrays.items()}
    params = theirs(like, {k: v.astype(dtype) for k, v in problem.params.items()}, 2, n)
    given = (*arrays.values(), *params.values())
    out_shape = user_shape(problem.dout.shape, DATA[2], layouts[query])

    def forward_problem(args, result) -> str | None:
        return arrays_problem([("forward's out", result[0], out_shape, f"the query {query}'s")],
                              np.dtype(dtype), given)

    out, cache = guard(name, "forward", forward, forward_problem)(arrays, params)
    shapes = {k: user_shape(a.shape, DATA[2], layouts[k]) for k, a in problem.arrays.items()}
    dues = {u: a.shape for u, a in params.items()}

    def backward_problem(args, result) -> str | None:
        if isinstance(result, str):
            return result
        found, grads = result
        if set(grads) != set(like.order):
            return f"backward's grads have keys {sorted(grads)}; expected {sorted(like.order)}"
        return arrays_problem([(f"backward's d{k}", found[k], shapes[k], f"input {k}'s") for k in shapes]
                              + [(f"backward's grads[{u!r}]", grads[u], dues[u], f"params[{u!r}]'s")
                                 for u in like.order], np.dtype(dtype), given)

    dout = to_user(problem.dout.astype(dtype), DATA[2], layouts[query])
    found, grads = guard(name, "backward", backward, backward_problem)(dout, cache)
    kind = ours(like, {u: in_dtype(g, np.dtype(dtype)) for u, g in grads.items()}, problem.params, 2)
    gradients = {k: from_user(in_dtype(found[k], np.dtype(dtype)), DATA[2], layouts[k]) for k in shapes}
    gradients |= {shown(like, k): g for k, g in kind.items()}
    return (np.asarray(from_user(out, DATA[2], layouts[query]), np.float64),
            {k: np.asarray(g, np.float64) for k, g in gradients.items()})


def own_differences(layer, problem: InputsProblem) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Finite differences of Σ G ⊙ (your forward) over up to ENTRIES entries of every input and
    parameter (the others NaN), with their error estimates: by your names, in bpcheck's layouts."""
    from reference.differences import central_differences

    like = layer.declared
    forward, _ = inputs_pair(like.inputs, like.order, layer.forward, layer.backward)
    run = guard(layer.name, "forward", forward)
    layouts = dict(zip(like.inputs, like.inputs_layout, strict=True))
    query, n = roles(like.inputs)[0], problem.dout.shape[0]
    arrays = {k: to_user(a, DATA[2], layouts[k]) for k, a in problem.arrays.items()}
    params = theirs(like, problem.params, 2, n)
    dout = to_user(problem.dout, DATA[2], layouts[query])

    def loss(values: dict[str, np.ndarray]) -> float:
        out = run({k: values[k].copy() for k in arrays}, {u: values[u].copy() for u in params})[0]
        return float(np.sum(np.asarray(out, np.float64) * dout))

    total = sum(a.size for a in (*arrays.values(), *params.values()))
    entries = np.sort(np.random.default_rng(0).choice(total, min(total, ENTRIES), replace=False))
    work = rounding_steps(4, max(a[0].size for a in arrays.values()), n)
    fd, errors = central_differences(loss, arrays | params, work, dout.size, entries)

    def ours_all(found: dict) -> dict[str, np.ndarray]:
        kind = ours(like, {u: found[u] for u in params}, problem.params, 2)
        return ({k: from_user(found[k], DATA[2], layouts[k]) for k in arrays}
                | {shown(like, k): g for k, g in kind.items()})

    return ours_all(fd), ours_all(errors)


def measured(like, problem: InputsProblem, out: np.ndarray, grads: dict[str, np.ndarray]
             ) -> tuple[np.ndarray, dict[str, np.ndarray], float]:
    """(the forward's allowance, each gradient's, the floor) for ``problem`` (module docstring),
    around torch's float64 ``out`` and ``grads``; entries float32 lost not judged (∞)."""
    dtype, rho = problem.dtype, rerun_perturbation(problem.dtype)
    rng = np.random.default_rng(0)
    shapes = {n: a.shape for n, a in (*problem.arrays.items(), *problem.params.items())} | {
        "dout": problem.dout.shape}
    spread_out, spread = np.zeros_like(out), {k: np.zeros_like(g) for k, g in grads.items()}
    for _ in range(SENSITIVITY_RUNS):
        factors = {n: 1.0 + rho * rng.choice([-1.0, 1.0], s) for n, s in shapes.items()}
        rerun_out, rerun = torch_run(like, problem, "float64", factors)
        spread_out = np.maximum(spread_out, np.abs(rerun_out - out))
        spread = {k: np.maximum(spread[k], np.abs(rerun[k] - grads[k])) for k in grads}
    out32, grads32 = torch_run(like, problem, "float32")
    steps = rounding_steps(4, max(a[0].size for a in problem.arrays.values()), problem.dout.shape[0])
    floor = underflow_floor(steps, dtype)
    ratio = 1.0 if dtype == "float32" else unit_roundoff("float64") / unit_roundoff("float32")

    def allowance(truth: np.ndarray, wide: np.ndarray, float32: np.ndarray) -> np.ndarray:
        error = np.abs(float32 - truth)
        allowed = spread_allowance(sensitivity(dtype, wide, rho, truth, 1.0, ratio * error), floor)
        lost = ~np.isfinite(error) | (error >= FLOAT32_LOST * np.max(np.abs(truth), initial=0.0))
        return np.where(lost & (dtype == "float64") & (error > 0), np.inf, allowed)

    return (allowance(out, spread_out, out32),
            {k: allowance(g, spread[k], grads32[k]) for k, g in grads.items()}, floor)


def _row(rule: str, quantity: str, name: str, yours: np.ndarray, truth: np.ndarray, allowed: np.ndarray,
         floor: float, witness: str, scale: np.ndarray) -> Row:
    checked = np.isfinite(truth)
    verdict, tolerance = row_verdict(yours[checked], truth[checked], allowed[checked], floor,
                                     scale=scale[checked])
    error = discrepancy(yours, np.where(checked, truth, yours))  # entries not differenced: no error
    return Row(rule, quantity, name, truth.shape, witness, error, tolerance, verdict, int(checked.sum()))


def compare_inputs(layer, problem: InputsProblem, rule) -> RuleReport:
    """Your layer on ``problem``: the forward row against torch, each gradient's rows against
    torch, jax and finite differences of your forward (module docstring)."""
    from bpcheck.core.tolerances import finite_difference_allowance

    like = layer.declared
    out, grads = user_run(layer, problem, problem.dtype)
    truth_out, truth = torch_run(like, problem)
    out_allowed, allowed, floor = measured(like, problem, truth_out, truth)
    rows = [_row(layer.name, "forward", "out", out, truth_out, out_allowed, floor, "torch", truth_out)]
    by_jax = jax_run(like, problem)
    key_bias = like.names.get(KEY_BIAS)
    if key_bias is not None:
        steps = rounding_steps(4, max(a[0].size for a in problem.arrays.values()), problem.dout.shape[0])
        terms = by_jax["|dK|"] + key_bias_terms(like, problem)
        rows.append(key_bias_row(layer.name, key_bias, grads.pop(key_bias), terms, steps, problem.dtype))
    for name, g in grads.items():
        for witness, values in (("torch", truth), ("jax", by_jax)):
            rows.append(_row(layer.name, "gradient", name, g, values[name], allowed[name], floor, witness,
                             truth[name]))
    if not any(row.differs for row in rows):
        return RuleReport(rule, rows)
    fd, errors = own_differences(layer, problem)
    for name, g in grads.items():
        scale = float(np.max(np.abs(truth[name]), initial=0.0))
        own = finite_difference_allowance(errors[name], allowed[name], fd[name], scale)
        rows.append(_row(layer.name, "gradient", name, g, fd[name], own, floor, OWN_FORWARD, truth[name]))
    return RuleReport(rule, rows)
