"""Layers, activations and losses with their forward written once, each with a slip to catch.

    bpcheck verify examples/one_forward.py:rms_norm            # forward(x, params, xp): agrees, exit 0
    bpcheck verify examples/one_forward.py:rms_norm_slip       # WRONG, exit 1
    bpcheck verify examples/one_forward.py:swish_gate          # NumPy forward alone: agrees, exit 0
    bpcheck verify examples/one_forward.py:swish_gate_slip     # WRONG, exit 1
    bpcheck verify examples/one_forward.py:hard_sigmoid        # value(z, xp): agrees
    bpcheck verify examples/one_forward.py:my_elu              # like="elu": agrees
    bpcheck verify examples/one_forward.py:huber               # per_sample(p, y, xp): agrees
    bpcheck verify examples/one_forward.py:nll                 # labels, per_sample(p, y, xp): agrees
    bpcheck verify examples/one_forward.py:rnn                 # a recurrent layer written once: agrees

Each slip's name ends in _slip. No torch or jax code: ``xp`` is NumPy, torch or jax in turn.
"""

import numpy as np

from bpcheck import UserActivation, UserLayer, UserLoss

EPS = 1e-6


# --- a layer, its forward written once against xp ------------------------------------------------
def rms_forward(x, params, xp):
    """y = g * x / sqrt(mean(x^2) + eps), the mean over every feature of a sample."""
    axes = tuple(range(1, x.ndim))
    return params["g"] * x / xp.sqrt(xp.mean(x * x, axis=axes, keepdims=True) + EPS)


def rms_backward(dout, cache):
    """dx = inv_rms * (g*dout - x_hat * mean(g*dout*x_hat)); dg = sum over the batch of dout*x_hat."""
    x, params = cache  # the forward returned out alone: the cache is (x, params)
    axes = tuple(range(1, x.ndim))
    inv_rms = 1.0 / np.sqrt(np.mean(x * x, axis=axes, keepdims=True) + EPS)
    x_hat, g_dout = x * inv_rms, params["g"] * dout
    dx = inv_rms * (g_dout - x_hat * np.mean(g_dout * x_hat, axis=axes, keepdims=True))
    return dx, {"g": np.sum(dout * x_hat, axis=0)}


def rms_backward_slip(dout, cache):
    """The slip: inv_rms treated as a constant, so the mean-square term is missing."""
    x, params = cache
    inv_rms = 1.0 / np.sqrt(np.mean(x * x, axis=tuple(range(1, x.ndim)), keepdims=True) + EPS)
    return inv_rms * params["g"] * dout, {"g": np.sum(dout * x * inv_rms, axis=0)}


rms_norm = UserLayer("rms_norm", rms_forward, rms_backward, parameters={"g": lambda shape: shape})
rms_norm_slip = UserLayer("rms_norm", rms_forward, rms_backward_slip, parameters={"g": lambda shape: shape})


# --- a layer given as its NumPy pair alone: finite differences of its own forward check it -------
def gate_forward(x, params):
    """y = x * sigmoid(beta * x), one beta per feature."""
    s = 1.0 / (1.0 + np.exp(-params["beta"] * x))
    return x * s, (x, s, params["beta"])


def gate_backward(dout, cache):
    """dy/dx = s + beta*x*s*(1-s); dy/dbeta = x^2*s*(1-s)."""
    x, s, beta = cache
    slope = s * (1.0 - s)
    return dout * (s + beta * x * slope), {"beta": np.sum(dout * x * x * slope, axis=0)}


def gate_backward_slip(dout, cache):
    """The slip: beta left out of the input's path through the gate."""
    x, s, _ = cache
    slope = s * (1.0 - s)
    return dout * (s + x * slope), {"beta": np.sum(dout * x * x * slope, axis=0)}


swish_gate = UserLayer("swish_gate", gate_forward, gate_backward, parameters={"beta": lambda shape: shape},
                       rank=1)
swish_gate_slip = UserLayer("swish_gate", gate_forward, gate_backward_slip,
                            parameters={"beta": lambda shape: shape}, rank=1)


# --- activations --------------------------------------------------------------------------------
# Keras's hard sigmoid (slope 0.2; torch's hardsigmoid has slope 1/6): written once, no hand clamp
hard_sigmoid = UserActivation("hard_sigmoid", lambda z, xp: xp.clip(0.2 * z + 0.5, 0.0, 1.0),
                              lambda z, a: np.where(np.abs(z) < 2.5, 0.2, 0.0), kinks=(-2.5, 2.5))
# the slip: torch's slope and corners copied into the derivative
hard_sigmoid_slip = UserActivation("hard_sigmoid", hard_sigmoid.value,
                                   lambda z, a: np.where(np.abs(z) < 3.0, 1 / 6, 0.0), kinks=(-2.5, 2.5))


def elu(z):
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0.0)))


# a known activation: torch's and jax's own elu check it
my_elu = UserActivation("my_elu", elu, lambda z, a: np.where(z > 0, 1.0, a + 1.0), like="elu")
my_elu_slip = UserActivation("my_elu", elu, lambda z, a: np.where(z > 0, 1.0, a), like="elu")


# --- losses (outputs x samples, summed over the outputs) ----------------------------------------
def huber_value(p, y, xp):
    r = xp.abs(p - y)
    return xp.sum(xp.where(r < 1.0, 0.5 * r * r, r - 0.5), axis=-2)


huber = UserLoss("huber", huber_value, lambda p, y: np.clip(p - y, -1.0, 1.0))
huber_slip = UserLoss("huber", huber_value, lambda p, y: np.sign(p - y))  # the L1 gradient


def nll_value(p, labels, xp):
    """-log p[label] of each sample; p may carry leading copies, so index its last two axes."""
    return -xp.log(p[..., labels, xp.arange(p.shape[-1])])


def nll_gradient(p, labels):
    g = np.zeros_like(p)
    samples = np.arange(p.shape[-1])
    g[..., labels, samples] = -1.0 / p[..., labels, samples]
    return g


nll = UserLoss("nll", nll_value, nll_gradient, targets="labels", on_probabilities=True)


# --- a recurrent layer, its forward written once: h_t = tanh(x_t W + h_{t-1} U + b) -------------
def rnn_forward(x, params, xp):
    """x: (N, T, D) -> hidden states (N, T, D), h_0 = 0."""
    h, states = xp.zeros_like(x[:, 0, :]), []
    for t in range(x.shape[1]):
        h = xp.tanh(x[:, t, :] @ params["W"] + h @ params["U"] + params["b"])
        states.append(h)
    return xp.stack(states, axis=1)


def rnn_backward(dout, cache, steps=None):
    """Backpropagation through time; ``steps`` truncates it (the slip below)."""
    x, params = cache
    hs = rnn_forward(x, params, np)
    dx, dh_next = np.zeros_like(x), np.zeros_like(hs[:, 0, :])
    grads = {name: np.zeros_like(value) for name, value in params.items()}
    for t in reversed(range(x.shape[1])):
        h_prev = hs[:, t - 1, :] if t > 0 else np.zeros_like(hs[:, 0, :])
        da = (dout[:, t, :] + dh_next) * (1 - hs[:, t, :] ** 2)
        grads["W"] += x[:, t, :].T @ da
        grads["U"] += h_prev.T @ da
        grads["b"] += da.sum(axis=0)
        dx[:, t, :] = da @ params["W"].T
        dh_next = da @ params["U"].T if steps is None or x.shape[1] - t < steps else 0 * dh_next
    return dx, grads


def rnn_backward_slip(dout, cache):
    """The slip: the gradient stops after 2 steps back in time (a truncated BPTT)."""
    return rnn_backward(dout, cache, steps=2)


SQUARE = {"W": lambda shape: (shape[1], shape[1]), "U": lambda shape: (shape[1], shape[1]),
          "b": lambda shape: shape[1:]}
rnn = UserLayer("my_rnn", rnn_forward, rnn_backward, parameters=SQUARE, rank=2)
rnn_slip = UserLayer("my_rnn", rnn_forward, rnn_backward_slip, parameters=SQUARE, rank=2)
