"""Attention as a course's assignment solution writes it (``*_forward`` returns ``(out, cache)``,
``*_backward`` returns the gradients of each input, then a dict of the parameters'), weights
stored (in, out) so that ``Q = q @ Wq + bq``, a key bias ``bk`` if ``params`` has one (the softmax
removes it: its gradient is 0). Checked by
``like=`` with no torch or jax code: self-attention on one x, and cross-attention with its
query, key and value as separate inputs (``inputs=``), each gradient reported under its name;
and a library's layer object (``MultiHeadAttention``: ``forward(query, key, value)``, weights
(out, in) made on its first call). Each with a slip a student makes, caught as WRONG.

    bpcheck verify examples/attention_layers.py:cross_attention          # agrees: exit 0
    bpcheck verify examples/attention_layers.py:cross_attention_swapped  # dk, dv swapped: exit 1
"""

import numpy as np

from bpcheck import UserLayer, object_pair

HEADS = 2
PARAMETERS = ("Wq", "bq", "Wk", "Wv", "bv", "Wo", "bo")  # in attention's order: W_q, b_q, W_k, …
LAYOUT = {"Wq": "IO", "Wk": "IO", "Wv": "IO", "Wo": "IO"}


def split_heads(a):
    """(N, T, D) → (N, heads, T, D/heads)."""
    n, t, d = a.shape
    return a.reshape(n, t, HEADS, d // HEADS).transpose(0, 2, 1, 3)


def merge_heads(a):
    n, h, t, d = a.shape
    return a.transpose(0, 2, 1, 3).reshape(n, t, h * d)


def attention_forward(q, k, v, params):
    """out = softmax(Q Kᵀ/√d) V Wo + bo per head, Q = q Wq + bq, K = k Wk, V = v Wv + bv."""
    Q = split_heads(q @ params["Wq"] + params["bq"])
    K = split_heads(k @ params["Wk"] + params.get("bk", 0.0))  # a key bias, if it has one
    V = split_heads(v @ params["Wv"] + params["bv"])
    scores = Q @ K.transpose(0, 1, 3, 2) * Q.shape[-1] ** -0.5
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    P = e / e.sum(axis=-1, keepdims=True)
    O = merge_heads(P @ V)
    return O @ params["Wo"] + params["bo"], (q, k, v, params, Q, K, V, P, O)


def attention_backward(dout, cache, slip=""):
    """(dq, dk, dv, grads); ``slip`` is a twin's mistake."""
    q, k, v, params, Q, K, V, P, O = cache
    grads = {"Wo": np.einsum("ntd,nte->de", O, dout), "bo": dout.sum(axis=(0, 1))}
    dO = split_heads(dout @ params["Wo"].T)
    dV, dP = P.transpose(0, 1, 3, 2) @ dO, dO @ V.transpose(0, 1, 3, 2)
    if slip == "diagonal":  # the softmax Jacobian's diagonal p(1 − p) alone
        dS = P * (1 - P) * dP
    else:
        dS = P * (dP - np.sum(P * dP, axis=-1, keepdims=True))
    scale = 1.0 if slip == "unscaled" else Q.shape[-1] ** -0.5
    dQ, dK = dS @ K * scale, dS.transpose(0, 1, 3, 2) @ Q * scale
    dQ, dK, dV = merge_heads(dQ), merge_heads(dK), merge_heads(dV)
    if slip == "swapped":  # the key's and the value's gradients mixed up
        dK, dV = dV, dK
    if "bk" in params:  # its gradient: Σ dK, 0 up to rounding (each softmax row's dS sums to 0)
        grads["bk"] = (dQ if slip == "key_bias" else dK).sum(axis=(0, 1))
    grads |= {"Wq": np.einsum("ntd,nte->de", q, dQ), "bq": dQ.sum(axis=(0, 1)),
              "Wk": np.einsum("ntd,nte->de", k, dK), "Wv": np.einsum("ntd,nte->de", v, dV),
              "bv": dV.sum(axis=(0, 1))}
    return dQ @ params["Wq"].T, dK @ params["Wk"].T, dV @ params["Wv"].T, grads


def attention_backward_diagonal(dout, cache):
    return attention_backward(dout, cache, slip="diagonal")


def attention_backward_swapped(dout, cache):
    return attention_backward(dout, cache, slip="swapped")


def attention_backward_unscaled(dout, cache):
    return attention_backward(dout, cache, slip="unscaled")


def self_attention_backward(dout, cache, slip=""):
    """Self-attention: x is the query, the key and the value, so dx = dq + dk + dv."""
    dq, dk, dv, grads = attention_backward(dout, cache, slip)
    return dq + dk + dv, grads


def self_attention_backward_diagonal(dout, cache):
    return self_attention_backward(dout, cache, slip="diagonal")


class MultiHeadAttention:
    """A library's layer object: ``forward(query, key, value)``, ``backward(dout) → (dq, dk, dv)``,
    weights made on the first call and stored (out, in) in ``self.params``, gradients in
    ``self.grads``; ``slip`` is a twin's mistake."""

    NAMES = ("wq", "bq", "wk", "wv", "bv", "wo", "bo")

    def __init__(self, slip=""):
        self.params, self.grads, self.slip = {}, {}, slip

    def forward(self, query, key, value):
        if not self.params:
            d, rng = query.shape[-1], np.random.default_rng(0)
            self.params = {n: rng.normal(0, d**-0.5, (d, d) if n[0] == "w" else d) for n in self.NAMES}
        weights = dict(("W" + n[1:], v.T) if n[0] == "w" else (n, v) for n, v in self.params.items())
        out, self.cache = attention_forward(query, key, value, weights)
        return out

    def backward(self, dout):
        dq, dk, dv, grads = attention_backward(dout, self.cache, self.slip)
        self.grads = {n.lower(): g.T if n[0] == "W" else g for n, g in grads.items()}
        return dq, dk, dv


def _self(backward):
    return UserLayer("self_attention", lambda x, p: attention_forward(x, x, x, p), backward,
                     like=f"attention:h{HEADS}", parameters=PARAMETERS, layout=LAYOUT)


def _cross(backward):
    return UserLayer("cross_attention", attention_forward, backward, like=f"attention:h{HEADS}",
                     inputs=("q", "k", "v"), parameters=PARAMETERS, layout=LAYOUT)


def _library(slip):
    pair = object_pair(lambda: MultiHeadAttention(slip), parameters="params[{}]", gradients="grads[{}]")
    return UserLayer("multi_head", *pair, like=f"attention:h{HEADS}", inputs=("query", "key", "value"),
                     parameters=MultiHeadAttention.NAMES)


self_attention = _self(self_attention_backward)
self_attention_diagonal = _self(self_attention_backward_diagonal)
cross_attention, cross_attention_diagonal = _cross(attention_backward), _cross(attention_backward_diagonal)
cross_attention_swapped, cross_attention_unscaled = (_cross(attention_backward_swapped),
                                                     _cross(attention_backward_unscaled))
multi_head, multi_head_unscaled = _library(""), _library("unscaled")
