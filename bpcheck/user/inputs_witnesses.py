"""The witnesses of a layer with several named inputs (``bpcheck.user.inputs_check``): torch's
``F.multi_head_attention_forward`` (``reference.torch_sequence.attend``) and ``jax.vjp`` of
``reference.jax_stack.attend``, each giving the output and the gradient of Σ G ⊙ out by your
names; and the row of a key bias, whose gradient is exactly 0."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from bpcheck.core.compare import Row, row_verdict
from bpcheck.core.metrics import discrepancy
from bpcheck.core.tolerances import SAFETY, underflow_floor, unit_roundoff
from bpcheck.user.like import KEY_BIAS
from bpcheck.user.like_inputs import roles

if TYPE_CHECKING:
    from bpcheck.user.inputs_problem import InputsProblem

#: The quantity of a key bias's row: a gradient whose exact value is 0 (it settles nothing).
ZERO = "gradient (exactly 0)"


def shown(like, kind_name: str) -> str:
    """A kind parameter under the user's name."""
    return like.names[kind_name]


def torch_run(like, problem: InputsProblem, dtype: str = "float64", factors: dict | None = None
              ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(out, gradients of Σ G ⊙ out by your names) from torch, in ``dtype``; ``factors``
    multiply the stored values (a rerun)."""
    import torch

    from reference.torch_sequence import attend

    factors = factors or {}
    kind = getattr(torch, dtype)

    def tensor(name, a):
        return torch.tensor(np.asarray(a * factors.get(name, 1.0), dtype), dtype=kind, requires_grad=True)

    inputs = {n: tensor(n, a) for n, a in problem.arrays.items()}
    own = {k: tensor(k, v) for k, v in problem.params.items()}
    q, k, v = roles(like.inputs)
    out = attend(like.layer, inputs[q], inputs[k], inputs[v], own)
    (out * tensor("dout", problem.dout)).sum().backward()
    grads = {n: t.grad for n, t in inputs.items()} | {shown(like, n): t.grad for n, t in own.items()}
    found = {n: g.numpy().astype(np.float64) for n, g in grads.items()}
    return out.detach().numpy().astype(np.float64), found


@cache
def _jax_gradients(layer, names: tuple[str, str, str]):
    """``jax.vjp`` of ``attend`` for dout, compiled once per shape (``jax.jit``, with the
    witnesses' quick compile options)."""
    import jax

    from reference.jax_stack import QUICK, attend

    def run(inputs, own):
        return attend(layer, inputs[names[0]], inputs[names[1]], inputs[names[2]], own)

    return jax.jit(lambda inputs, own, dout: jax.vjp(run, inputs, own)[1](dout), compiler_options=QUICK)


def jax_run(like, problem: InputsProblem) -> dict[str, np.ndarray]:
    """Gradients of Σ G ⊙ out by your names from ``jax.vjp``, float64; with a key bias, also
    Σ_{n,s} |∂L/∂K_{n,s}| under "|dK|" (its own gradient's terms, ``key_bias_row``)."""
    import jax

    gradients = _jax_gradients(like.layer, roles(like.inputs))  # imports jax_stack: float64 on
    keys = problem.arrays[roles(like.inputs)[1]].shape
    params = dict(problem.params)
    if KEY_BIAS in params:  # one per sample and key: its gradient is ∂L/∂K itself
        params[KEY_BIAS] = np.broadcast_to(params[KEY_BIAS], keys)
    values = ({n: jax.device_put(a) for n, a in problem.arrays.items()},
              {n: jax.device_put(np.asarray(a)) for n, a in params.items()})
    inputs, own = gradients(*values, jax.device_put(problem.dout))
    own = {n: np.asarray(g) for n, g in own.items()}
    terms = {"|dK|": np.abs(own[KEY_BIAS]).sum(axis=(0, 1))} if KEY_BIAS in own else {}
    own |= {KEY_BIAS: own[KEY_BIAS].sum(axis=(0, 1))} if KEY_BIAS in own else {}
    found = {n: np.asarray(g) for n, g in inputs.items()}
    return found | {shown(like, n): g for n, g in own.items()} | terms


def key_bias_terms(like, problem: InputsProblem) -> np.ndarray:
    r"""Per feature of K, the size of the terms a key bias's gradient Σ_{n,s} dK_{n,s} cancels:
    dK = dSᵀ Q/√d and each row of dS = P ⊙ (dP − Σ_s P ⊙ dP) sums to 0 exactly, but is computed
    from terms up to P_ts (|dP_ts| + |Σ_r P_tr dP_tr|), which sum over s to at most
    2 max_r |dP_tr| ≤ 2 ‖dO_t‖ max_r ‖V_r‖ (Cauchy–Schwarz over the head's d features). So

    .. math:: T_a = \sum_{n,t} 2 ‖dO_{nt}‖ \max_r ‖V_{nr}‖ \, |Q_{nta}| / \sqrt d

    per head, from the problem's float64 values (dO = dout W_o, Q = q W_qᵀ + b_q, V = v W_vᵀ + b_v)."""
    q, _, v = (problem.arrays[name] for name in roles(like.inputs))
    p, heads = problem.params, like.layer.heads

    def split(a: np.ndarray) -> np.ndarray:  # (N, T, D) → (N, h, T, d)
        return a.reshape(*a.shape[:2], heads, -1).transpose(0, 2, 1, 3)

    queries = split(q @ p["W_q"].T + p.get("b_q", 0.0))
    values, grad_out = split(v @ p["W_v"].T + p.get("b_v", 0.0)), split(problem.dout @ p["W_o"])
    rows = 2 * np.linalg.norm(grad_out, axis=-1) * np.linalg.norm(values, axis=-1).max(axis=-1, keepdims=True)
    terms = np.einsum("nht,nhta->ha", rows, np.abs(queries)) / np.sqrt(queries.shape[-1])
    return terms.reshape(-1)


def key_bias_row(rule: str, name: str, yours: np.ndarray, terms: np.ndarray, steps: int, dtype: str) -> Row:
    """Your key bias's gradient against its exact 0, allowed SAFETY·(u_d + u_64)·m·(T + Σ_{n,s}
    |∂L/∂K_{n,s}|) + floor: the rounding of the terms it cancels (``key_bias_terms``, ``terms``
    holds both), m = ``rounding_steps``: a correct one's |db_k| came to at most 0.002 of it over
    1,000 draws each of a cross- and a self-attention, float32 and float64 (measured; Σ|dK| alone
    was 4× short in float32: dS cancels before dK is formed). Its quantity is not "gradient": it
    can show a mistake, never settle a draw (0 is all it can be)."""
    allowed = SAFETY * (unit_roundoff(dtype) + unit_roundoff("float64")) * steps * terms
    floor = underflow_floor(steps, dtype)
    zero = np.zeros_like(terms)
    verdict, tolerance = row_verdict(yours, zero, allowed + floor, floor, scale=terms)
    return Row(rule, ZERO, name, zero.shape, "the softmax removes a key bias",
               discrepancy(yours, zero), tolerance, verdict, zero.size)
