r"""Recurrent layers over T steps — ``rnn`` (tanh), ``lstm``, ``gru`` — with full backpropagation
through time.

Shapes: x (N, T, D) → every hidden state h (N, T, H). Parameters in torch's layouts and gate
order (g gates: 1 for rnn, 4 for lstm, 3 for gru): W_ih (gH, D), W_hh (gH, H), b_ih (gH,),
b_hh (gH,), and the initial state h0 (H,) (lstm also c0 (H,)), an input of the layer shared by
the batch: h_{−1} = h0 for every sample, so ∂L/∂h0 = Σ_n ∂L/∂h_{−1,n}. Per step, with
a_t = x_t W_ihᵀ + b_ih and r_t = h_{t−1} W_hhᵀ + b_hh (each split into its gates in order):

* ``rnn``:  h_t = tanh(a_t + r_t).
* ``lstm`` (gates i, f, g, o): i, f, o = σ(a + r) of their rows, g = tanh(a + r);
  c_t = f ⊙ c_{t−1} + i ⊙ g, h_t = o ⊙ tanh(c_t).
* ``gru`` (gates r, z, n): r, z = σ(a + r) of their rows; n = tanh(a_n + r ⊙ r_n), the reset
  gate multiplying the hidden side *with* its bias b_hn; h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}.

Backward through time runs t = T−1 … 0 carrying dh (and lstm's dc) from step t to t−1:
dh_t = dout_t + (∂L/∂h_t through step t+1). Each step's pre-activation gradient dp_t gives
∂L/∂W_ih += dp_tᵀ x_t, ∂L/∂W_hh += dq_tᵀ h_{t−1}, ∂L/∂b_ih += Σ_n dp_t, ∂L/∂b_hh += Σ_n dq_t,
∂L/∂x_t = dp_t W_ih and dh_{t−1} += dq_t W_hh, where dq = dp except gru's n rows (r ⊙ dp_n).
Gate derivatives come from the gates' values: σ′ = s(1 − s), tanh′ = 1 − t².
"""

from __future__ import annotations

import numpy as np

from manual.activations import sigmoid
from manual.layer_kinds import Layer
from manual.spec import Array


def _pre(x_t: Array, h: Array, params: dict[str, Array]) -> tuple[Array, Array]:
    """(a_t, r_t) = (x_t W_ihᵀ + b_ih, h W_hhᵀ + b_hh)."""
    a, r = x_t @ params["W_ih"].T, h @ params["W_hh"].T
    if "b_ih" in params:
        a, r = a + params["b_ih"], r + params["b_hh"]
    return a, r


def _gates(z: Array, count: int) -> tuple[Array, ...]:
    """z's columns split into ``count`` gates of equal width, in order (views, as ``np.split``)."""
    width = z.shape[1] // count
    return tuple(z[:, k * width:(k + 1) * width] for k in range(count))


def _initial(params: dict[str, Array], name: str, n: int) -> Array:
    return np.broadcast_to(params[name], (n, params[name].shape[0])).copy()


def recurrent_forward(x: Array, params: dict[str, Array], layer: Layer) -> tuple[Array, tuple]:
    """Every hidden state h (N, T, H); the cache keeps each step's gates and states."""
    n, steps = x.shape[:2]
    h = _initial(params, "h0", n)
    c = _initial(params, "c0", n) if layer.kind == "lstm" else None
    states, caches = [], []
    for t in range(steps):
        a, r = _pre(x[:, t], h, params)
        if layer.kind == "rnn":
            new = np.tanh(a + r)
            step = (h, new)
        elif layer.kind == "lstm":
            i, f, g, o = _gates(a + r, 4)
            i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
            c_prev, c = c, f * c + i * g
            tanh_c = np.tanh(c)
            new = o * tanh_c
            step = (h, c_prev, i, f, g, o, tanh_c)
        else:
            (a_r, a_z, a_n), (r_r, r_z, r_n) = _gates(a, 3), _gates(r, 3)
            reset, update = sigmoid(a_r + r_r), sigmoid(a_z + r_z)
            cand = np.tanh(a_n + reset * r_n)
            new = (1 - update) * cand + update * h
            step = (h, reset, update, cand, r_n)
        caches.append(step)
        states.append(new)
        h = new
    return np.stack(states, axis=1), (layer.kind, x, params, caches)


def cell_gradient(dh: Array, dc: Array, step: tuple) -> Array:
    """lstm's ∂L/∂c_t = dc + dh ⊙ o ⊙ (1 − tanh²(c_t)): through step t+1 and through h_t."""
    o, tanh_c = step[5:7]
    return dc + dh * o * (1 - tanh_c * tanh_c)


def step_backward(kind: str, dh: Array, dc: Array | None, step: tuple
                  ) -> tuple[Array, Array, Array | None, Array]:
    """One step back: (dp, dq, dc into c_{t−1}, dh into h_{t−1} not through W_hh) from the
    gradient dh (and dc) reaching h_t (c_t)."""
    if kind == "rnn":
        dp = dh * (1 - step[1] * step[1])
        return dp, dp, None, np.zeros_like(dh)
    if kind == "lstm":
        _, c_prev, i, f, g, o, tanh_c = step
        dc = cell_gradient(dh, dc, step)
        dp = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g * g),
                             dh * tanh_c * o * (1 - o)], axis=1)
        return dp, dp, dc * f, np.zeros_like(dh)
    h, reset, update, cand, r_n = step
    d_n = dh * (1 - update) * (1 - cand * cand)
    d_r = d_n * r_n * reset * (1 - reset)
    d_z = dh * (h - cand) * update * (1 - update)
    return (np.concatenate([d_r, d_z, d_n], axis=1), np.concatenate([d_r, d_z, d_n * reset], axis=1),
            None, dh * update)


def zero_gradients(dout: Array, cache: tuple) -> tuple[Array, dict[str, Array], Array, Array | None]:
    """(∂L/∂x, every parameter's gradient, dh, dc) before the first step back: all zeros."""
    kind, x, params, _ = cache
    dh = np.zeros_like(dout[:, 0])
    return (np.zeros_like(x), {name: np.zeros_like(value) for name, value in params.items()}, dh,
            np.zeros_like(dh) if kind == "lstm" else None)


def accumulate(t: int, dp: Array, dq: Array, cache: tuple, dx: Array, grads: dict[str, Array]) -> Array:
    """Step t's shares, added into ``dx`` and ``grads`` (the backward's own accumulators):
    ∂L/∂W_ih += dpᵀ x_t, ∂L/∂W_hh += dqᵀ h_{t−1}, ∂L/∂b_ih += Σ_n dp, ∂L/∂b_hh += Σ_n dq,
    ∂L/∂x_t = dp W_ih; returns dq W_hh, the gradient reaching h_{t−1} through W_hh."""
    _, x, params, caches = cache
    grads["W_ih"] += dp.T @ x[:, t]
    grads["W_hh"] += dq.T @ caches[t][0]
    if "b_ih" in grads:
        grads["b_ih"] += dp.sum(axis=0)
        grads["b_hh"] += dq.sum(axis=0)
    dx[:, t] = dp @ params["W_ih"]
    return dq @ params["W_hh"]


def initial_state_gradients(grads: dict[str, Array], dh: Array, dc: Array | None) -> dict[str, Array]:
    """∂L/∂h0 = Σ_n dh_{−1,n} (lstm's ∂L/∂c0 likewise): h0 is shared by the batch."""
    grads["h0"] = dh.sum(axis=0)
    if dc is not None:
        grads["c0"] = dc.sum(axis=0)
    return grads


def recurrent_backward(dout: Array, cache: tuple) -> tuple[Array, dict[str, Array]]:
    """Backpropagation through time: ∂L/∂x (N, T, D) and every parameter's gradient."""
    kind, x, _, caches = cache
    dx, grads, dh, dc = zero_gradients(dout, cache)
    for t in reversed(range(x.shape[1])):
        dp, dq, dc, direct = step_backward(kind, dout[:, t] + dh, dc, caches[t])
        dh = direct + accumulate(t, dp, dq, cache, dx, grads)
    return dx, initial_state_gradients(grads, dh, dc)
