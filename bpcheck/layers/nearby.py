r"""Nearby layers for the sequence kinds (``bpcheck.layers.diagnose``): torch forwards with the
right output whose vector–Jacobian products are what a named mistake computes.

A mistake in a backward pass alone is a forward whose value is right and whose gradient is
another function's: ``straight(value, surrogate)`` = value + surrogate − stop_gradient(surrogate)
has the value of ``value`` and the derivative of ``surrogate``. Recurrent mistakes are a
truncated graph instead: earlier steps run detached (``torch.nn.RNN/LSTM/GRU`` with our weights,
``reference.torch_stack.recurrent_run``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from manual.stack import Layer
from reference.torch_sequence import initial_state, recurrent_run


def straight(value: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """value in the forward pass, surrogate's derivative in the backward pass."""
    return value.detach() + surrogate - surrogate.detach()


def embedding_last_occurrence(x: torch.Tensor, t: dict, layer: Layer, masks: dict) -> torch.Tensor:
    """W[x], connected to W only at each token's last occurrence (row-major): its gradient is
    one occurrence's dout, assigned, not the occurrences' sum."""
    flat = x.reshape(-1)
    order = torch.arange(flat.numel())
    later = (flat[None, :] == flat[:, None]) & (order[None, :] > order[:, None])
    out = F.embedding(x, t["W"])
    return torch.where((~later.any(dim=1)).reshape(x.shape)[..., None], out, out.detach())


def truncated_to_last_step(x: torch.Tensor, t: dict, layer: Layer, masks: dict) -> torch.Tensor:
    """Every step run, but only the last one connected: BPTT truncated to one step."""
    state = initial_state(layer, t, x.shape[0])
    if x.shape[1] == 1:
        return recurrent_run(layer, x, t, state)[0]
    first, last = recurrent_run(layer, x[:, :-1], t, state)
    final, _ = recurrent_run(layer, x[:, -1:], t, tuple(s.detach() for s in last))
    return torch.cat([first.detach(), final], dim=1)


def state_detached(x: torch.Tensor, t: dict, layer: Layer, masks: dict) -> torch.Tensor:
    """One step at a time, each from the previous state detached: the hidden state's gradient
    not carried from step to step."""
    state, outputs = initial_state(layer, t, x.shape[0]), []
    for step in range(x.shape[1]):
        out, state = recurrent_run(layer, x[:, step:step + 1], t, state)
        outputs.append(out)
        state = tuple(s.detach() for s in state)
    return torch.cat(outputs, dim=1)


def lstm_tanh_gate_as_sigmoid(x: torch.Tensor, t: dict, layer: Layer, masks: dict) -> torch.Tensor:
    """The lstm written out in torch, its g gate tanh(a) differentiated as g(1 − g)."""
    h, c = initial_state(layer, t, x.shape[0])
    outputs = []
    for step in range(x.shape[1]):
        z = F.linear(x[:, step], t["W_ih"], t.get("b_ih")) + F.linear(h, t["W_hh"], t.get("b_hh"))
        i, f, g, o = z.chunk(4, dim=1)
        value = torch.tanh(g)
        gate = straight(value, g * (value * (1 - value)).detach())
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * gate
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs, dim=1)


def attention_with(x: torch.Tensor, t: dict, layer: Layer, unscaled: bool = False,
                   diagonal: bool = False, unmasked: bool = False) -> torch.Tensor:
    """Attention written out in torch with one backward mistake: ``unscaled`` scores
    differentiated without 1/√d, a ``diagonal`` softmax Jacobian p(1 − p), or the softmax's
    backward ``unmasked``."""
    n, steps, width = x.shape

    def project(which: str) -> torch.Tensor:
        return F.linear(x, t[f"W_{which}"], t.get(f"b_{which}")) if layer.projections else x

    q, k, v = (project(which).reshape(n, steps, layer.heads, -1).transpose(1, 2) for which in "qkv")
    raw = q @ k.transpose(-1, -2)
    scores = raw / q.shape[-1] ** 0.5
    scores = straight(scores, raw) if unscaled else scores
    mask = torch.triu(torch.ones(steps, steps, dtype=torch.bool), 1)
    p = torch.softmax(scores.masked_fill(mask, -torch.inf) if layer.causal else scores, dim=-1)
    if diagonal:
        p = straight(p, scores * (p * (1 - p)).detach())
    if unmasked:
        p = straight(p, torch.softmax(scores, dim=-1))
    o = (p @ v).transpose(1, 2).reshape(n, steps, width)
    return F.linear(o, t["W_o"], t.get("b_o")) if layer.projections else o


RECURRENT_NEARBY = [
    ("backpropagation through time truncated to the last step",
     truncated_to_last_step),
    ("the hidden state's gradient not carried from step to step", state_detached),
]
#: kind → [(the mistake it stands for, a torch forward of the nearby layer)].
SEQUENCE_NEARBY = {
    "embedding": [("the gradient assigned, not accumulated, over repeated tokens",
                   embedding_last_occurrence)],
    "rnn": RECURRENT_NEARBY,
    "gru": RECURRENT_NEARBY,
    "lstm": [*RECURRENT_NEARBY, ("the tanh gate g differentiated as a sigmoid: g(1 − g) for 1 − g²",
                                 lstm_tanh_gate_as_sigmoid)],
    "attention": [
        ("the scores differentiated without 1/√d",
         lambda x, t, layer, m: attention_with(x, t, layer, unscaled=True)),
        ("the softmax Jacobian reduced to its diagonal p(1 − p)",
         lambda x, t, layer, m: attention_with(x, t, layer, diagonal=True)),
        ("the causal mask ignored in the softmax's backward",
         lambda x, t, layer, m: attention_with(x, t, layer, unmasked=True)),
    ],
}
