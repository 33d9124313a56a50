"""The sequence layers of witness 1 (``reference.torch_stack``): ``torch.nn.RNN``, ``LSTM`` and
``GRU`` run with our weights (the ops their forward calls; torch's layouts and gate orders
are ours: lstm i, f, g, o; gru r, z, n), ``F.multi_head_attention_forward`` (the functional form
of ``nn.MultiheadAttention``, separate projection weights, a boolean causal mask) and
``F.scaled_dot_product_attention`` without projections; and the activations' inputs inside
them, for the allowances. Reads only the model description from ``manual.spec``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from manual.spec import Layer, Params

Tensors = dict[str, torch.Tensor]

#: The ops ``torch.nn.RNN``, ``LSTM`` and ``GRU`` call in their forward (ATen's, batch first),
#: called with our weights in their order W_ih, W_hh, b_ih, b_hh: the module without its
#: parameter bookkeeping, which took half of each call through ``torch.func.functional_call``
#: (an LSTM's finite differences run one copy at a time: 0.61 ms a call against 0.27 ms; the
#: outputs equal the module's to 1e−14, tests/test_sequences.py).
OPS = {"rnn": torch.rnn_tanh, "lstm": torch.lstm, "gru": torch.gru}
WEIGHTS = ("W_ih", "W_hh", "b_ih", "b_hh")
RECURRENT = tuple(OPS)


def recurrent_run(layer: Layer, x: torch.Tensor, own: Tensors, state: tuple[torch.Tensor, ...]
                  ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """(every step's hidden state, the last state (h, c) each (N, H)) of ``torch.nn.RNN/LSTM/GRU``
    (batch first) run with our weights from ``state``."""
    weights = [own[name] for name in WEIGHTS if name in own]
    start = tuple(s[None].contiguous() for s in state)
    # one layer, no dropout, not training, one direction, batch first
    out, *last = OPS[layer.kind](x, start if layer.kind == "lstm" else start[0], weights, layer.bias,
                                 1, 0.0, False, False, True)
    return out, tuple(s[0] for s in last)


def initial_state(layer: Layer, own: Tensors, n: int) -> tuple[torch.Tensor, ...]:
    """h0 (and c0) broadcast over a batch of n."""
    return tuple(own[name].expand(n, layer.width) for name in ("h0", "c0") if name in own)


def recurrent(layer: Layer, x: torch.Tensor, own: Tensors) -> torch.Tensor:
    return recurrent_run(layer, x, own, initial_state(layer, own, x.shape[0]))[0]


def inner_preactivations(layer: Layer, x: np.ndarray, params: Params) -> list[tuple[str, np.ndarray]]:
    """Inside a recurrent layer or attention, in float64: every activation's input, named by
    the activation — ``("tanh", z)``, ``("sigmoid", z)``, and for attention ``("softmax", S)``
    with S the rows of scores a causal mask leaves whole, one list item per row length — for
    the allowances' conditioning (``bpcheck.layers.allowances``)."""
    own = {name.partition(".")[2]: torch.tensor(np.asarray(v, np.float64))
           for name, v in params.items() if name.partition(".")[0] == layer.name}
    x = torch.tensor(np.asarray(x, np.float64))
    found: list[tuple[str, torch.Tensor]] = []
    with torch.no_grad():
        if layer.kind == "attention":
            n, steps, _ = x.shape
            q, k = ((F.linear(x, own[f"W_{w}"], own.get(f"b_{w}")) if layer.projections else x)
                    .reshape(n, steps, layer.heads, -1).transpose(1, 2) for w in "qk")
            scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
            rows = [scores[..., t, :t + 1] for t in range(steps)] if layer.causal else [scores]
            return [("softmax", row.numpy()) for row in rows]
        state = initial_state(layer, own, x.shape[0])
        for step in range(x.shape[1]):
            z = F.linear(x[:, step], own["W_ih"], own.get("b_ih")) + F.linear(state[0], own["W_hh"],
                                                                              own.get("b_hh"))
            if layer.kind == "rnn":
                found.append(("tanh", z))
            elif layer.kind == "lstm":
                i, f, g, o = z.chunk(4, dim=1)
                found += [("sigmoid", torch.cat([i, f, o], dim=1)), ("tanh", g)]
            else:
                a = F.linear(x[:, step], own["W_ih"], own.get("b_ih")).chunk(3, dim=1)
                h = F.linear(state[0], own["W_hh"], own.get("b_hh")).chunk(3, dim=1)
                reset = torch.sigmoid(a[0] + h[0])
                found += [("sigmoid", z[:, :2 * layer.width]), ("tanh", a[2] + reset * h[2])]
            _, state = recurrent_run(layer, x[:, step:step + 1], own, state)
            if layer.kind == "lstm":
                found.append(("tanh", state[1]))  # tanh(c_t)
    return [(name, z.numpy()) for name, z in found]


def attention(layer: Layer, x: torch.Tensor, own: Tensors) -> torch.Tensor:
    """Self-attention: ``attend`` with query, key and value all ``x``."""
    return attend(layer, x, x, x, own)


def attend(layer: Layer, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
           own: Tensors) -> torch.Tensor:
    """``F.multi_head_attention_forward`` on query (Tq, N, D), key and value (Tk, N, D), or
    without projections ``F.scaled_dot_product_attention`` per head; a causal mask hides key
    s > t from query t (torch's top-left alignment where Tq ≠ Tk)."""
    n, steps, width = query.shape
    keys = key.shape[1]
    hidden = torch.triu(torch.ones(steps, keys, dtype=torch.bool), 1) if layer.causal else None
    if not layer.projections:
        q, k, v = (a.reshape(n, a.shape[1], layer.heads, -1).transpose(1, 2) for a in (query, key, value))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if hidden is None else ~hidden)
        return out.transpose(1, 2).reshape(n, steps, width)
    # no key bias in the description (the softmax removes it): torch's is zeros, unless given
    key_bias = own.get("b_k", torch.zeros_like(own["b_q"])) if layer.bias else None
    biases = torch.cat([own["b_q"], key_bias, own["b_v"]]) if layer.bias else None
    out, _ = F.multi_head_attention_forward(
        query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1), width, layer.heads, None,
        biases, None, None, False, 0.0, own["W_o"], own.get("b_o"), training=False, need_weights=False,
        attn_mask=hidden, use_separate_proj_weight=True, q_proj_weight=own["W_q"],
        k_proj_weight=own["W_k"], v_proj_weight=own["W_v"])
    return out.transpose(0, 1)
