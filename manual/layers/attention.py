r"""Self-attention over a sequence: scaled dot-product attention, with an optional causal mask,
split over h heads, with or without projection weights.

Shapes: x (N, T, D), D = h·d. With projections (torch's ``nn.MultiheadAttention`` with separate
projection weights): Q = x W_qᵀ + b_q, K = x W_kᵀ, V = x W_vᵀ + b_v (each W (D, D), b (D,)) —
no key bias: it adds q_t·b_k to every score of row t, which the softmax removes, so its
gradient is exactly 0 and nothing could check it (torch's is given as zeros);
without (``noproj``): Q = K = V = x. Per head (d columns each):

.. math::
    S = Q Kᵀ/\sqrt d \;(S_{ts} = −∞ \text{ for } s > t \text{ if causal}), \quad
    P = \mathrm{softmax}_s(S), \quad O = P V,

the heads' O side by side (N, T, D), then out = O W_oᵀ + b_o (or O without projections).

Backward per head, from dO: dV = Pᵀ dO, dP = dO Vᵀ, dS = P ⊙ (dP − Σ_s P ⊙ dP) (the softmax
Jacobian diag(p) − p pᵀ applied row by row; masked entries have P = 0, so dS = 0 there),
dQ = dS K/√d, dK = dSᵀ Q/√d. Then ∂L/∂x = dQ W_q + dK W_k + dV W_v (dQ + dK + dV without
projections), ∂L/∂W_q = Σ dQᵀ x, ∂L/∂b_q = Σ dQ (likewise k, v), ∂L/∂W_o = Σ doutᵀ O,
∂L/∂b_o = Σ dout, sums over samples and steps (no b_k).
"""

from __future__ import annotations

import numpy as np

from manual.layer_kinds import Layer
from manual.spec import Array

PROJECTIONS = ("q", "k", "v", "o")


def _heads(a: Array, h: int) -> Array:
    """(N, T, D) → (N, h, T, d)."""
    n, t, width = a.shape
    return a.reshape(n, t, h, width // h).transpose(0, 2, 1, 3)


def _merge(a: Array) -> Array:
    """(N, h, T, d) → (N, T, D)."""
    n, h, t, d = a.shape
    return a.transpose(0, 2, 1, 3).reshape(n, t, h * d)


def _linear(x: Array, params: dict[str, Array], which: str) -> Array:
    out = x @ params[f"W_{which}"].T
    return out + params[f"b_{which}"] if f"b_{which}" in params else out


def causal_mask(steps: int) -> Array:
    """True where s > t: the entries a causal mask removes."""
    return np.triu(np.ones((steps, steps), bool), k=1)


def softmax_rows(scores: Array) -> Array:
    """softmax over the last axis, from the row's largest score (−∞ entries give 0)."""
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def scores(q: Array, k: Array, causal: bool) -> Array:
    """S = Q Kᵀ/√d, −∞ above the diagonal if causal."""
    s = q @ k.swapaxes(-1, -2) * q.dtype.type(1 / np.sqrt(q.shape[-1]))  # in q's dtype
    return np.where(causal_mask(s.shape[-1]), -np.inf, s) if causal else s


def attention_forward(x: Array, params: dict[str, Array], layer: Layer) -> tuple[Array, tuple]:
    """out = (softmax(Q Kᵀ/√d) V per head) W_oᵀ + b_o."""
    project = layer.projections
    q, k, v = ((_linear(x, params, which) if project else x) for which in "qkv")
    q, k, v = (_heads(a, layer.heads) for a in (q, k, v))
    p = softmax_rows(scores(q, k, layer.causal))
    o = _merge(p @ v)
    out = _linear(o, params, "o") if project else o
    return out, (x, params, layer, q, k, v, p, o)


def softmax_backward(p: Array, dp: Array) -> Array:
    """dS = P ⊙ (dP − Σ_s P ⊙ dP), row by row."""
    return p * (dp - np.sum(p * dp, axis=-1, keepdims=True))


def _flat(a: Array) -> Array:
    return a.reshape(-1, a.shape[-1])


def values_backward(dout: Array, cache: tuple) -> tuple[dict[str, Array], Array, Array]:
    """(∂L/∂W_o and ∂L/∂b_o, dV, dP) per head from dout: ∂L/∂W_o = Σ doutᵀ O, ∂L/∂b_o = Σ dout,
    dO = dout W_o (dout without projections), dV = Pᵀ dO, dP = dO Vᵀ."""
    _, params, layer, _, _, v, p, o = cache
    grads: dict[str, Array] = {}
    if layer.projections:
        grads["W_o"] = _flat(dout).T @ _flat(o)
        if "b_o" in params:
            grads["b_o"] = _flat(dout).sum(axis=0)
        dout = dout @ params["W_o"]
    do = _heads(dout, layer.heads)
    return grads, p.swapaxes(-1, -2) @ do, do @ v.swapaxes(-1, -2)


def scores_backward(ds: Array, q: Array, k: Array) -> tuple[Array, Array]:
    """(dQ, dK) = (dS K/√d, dSᵀ Q/√d) per head, in q's dtype."""
    factor = q.dtype.type(1 / np.sqrt(q.shape[-1]))
    return ds @ k * factor, ds.swapaxes(-1, -2) @ q * factor


def inputs_backward(dq: Array, dk: Array, dv: Array, cache: tuple, grads: dict[str, Array]
                    ) -> tuple[Array, dict[str, Array]]:
    """∂L/∂x = dQ W_q + dK W_k + dV W_v (dQ + dK + dV without projections), the heads merged,
    and ``grads`` with ∂L/∂W_q = Σ dQᵀ x, ∂L/∂b_q = Σ dQ (likewise k, v)."""
    x, params, layer = cache[:3]
    dq, dk, dv = _merge(dq), _merge(dk), _merge(dv)
    if not layer.projections:
        return dq + dk + dv, grads
    dx = np.zeros_like(x)
    for which, d in zip("qkv", (dq, dk, dv), strict=True):
        grads[f"W_{which}"] = _flat(d).T @ _flat(x)
        if f"b_{which}" in params:
            grads[f"b_{which}"] = _flat(d).sum(axis=0)
        dx = dx + d @ params[f"W_{which}"]
    return dx, grads


def attention_backward(dout: Array, cache: tuple) -> tuple[Array, dict[str, Array]]:
    """∂L/∂x and the projections' gradients: the module docstring's backward."""
    q, k, _, p = cache[3:7]
    grads, dv, dp = values_backward(dout, cache)
    dq, dk = scores_backward(softmax_backward(p, dp), q, k)
    return inputs_backward(dq, dk, dv, cache, grads)
