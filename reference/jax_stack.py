"""Witness 2 for networks of layers (``manual.stack``): JAX autodiff in float64, built from
``lax.conv_general_dilated`` (convolution), ``lax.reduce_window`` (max and average pooling),
``jax.nn.standardize`` (batch norm in training mode, layer norm), ``lax.scan`` (rnn, lstm, gru,
their gates written out in torch's order), ``jax.nn.softmax`` over ``jnp.einsum`` scores
(attention) and ``jax.numpy`` (dense, flatten, embedding, projections, dropout with a given
mask: x·mask/(1 − p)), with the activations and per-sample losses of ``reference.jax_ref``.
Batch norm's running statistics are updated as torch does, the SGD step is ``optax.sgd``.
Reads only the model description from ``manual.stack``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from manual.spec import ACTIVATION, PADDING, Layer, Params, Stack, layers_of, stride, walk
from reference.flat import flattened
from reference.jax_ref import ACTIVATIONS, COMPILE_OPTIONS, LOSSES, activation, require_x64

require_x64()  # jax_ref switches x64 on at import; fail loudly if it did not take

TITLE = "jax"
Arrays = dict[str, jax.Array]
#: kind → a user's jax forward ``f(x, params) → out`` (``bpcheck.user.layer`` registers them)
USER_LAYERS: dict[str, Callable] = {}


def _conv(layer: Layer, x: jax.Array, own: Arrays) -> jax.Array:
    p, d = layer.padding, layer.dilation
    out = lax.conv_general_dilated(x, own["W"], window_strides=stride(layer), padding=[(p, p), (p, p)],
                                   rhs_dilation=(d, d), dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return out + own["b"][:, None, None] if "b" in own else out


def _pool(layer: Layer, x: jax.Array) -> jax.Array:
    window, steps = (1, 1, *layer.kernel), (1, 1, *stride(layer))
    if layer.kind == "max_pool2d":
        return lax.reduce_window(x, -jnp.inf, lax.max, window, steps, "VALID")
    return lax.reduce_window(x, 0.0, lax.add, window, steps, "VALID") / (layer.kernel[0] * layer.kernel[1])


# jax.nn.standardize's default algorithm="fast" takes the variance as mean(x²) − mean(x)², which
# cancels catastrophically when |mean| ≫ std (a bias before batch norm may shift a channel far
# from 0), losing digits a witness must keep; "stable" is the two-pass mean((x − mean)²).
def _batch_norm(layer: Layer, x: jax.Array, own: Arrays, stats: Arrays) -> jax.Array:
    """Training mode: normalise over the batch (and spatial) axes; record μ and the unbiased
    variance (M/(M − 1) times the batch variance, M values per channel) in ``stats``, keyed by
    the running statistic each one updates."""
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    stats[f"{layer.name}.running_mean"] = jnp.mean(x, axis=axes)
    stats[f"{layer.name}.running_var"] = jnp.var(x, axis=axes, ddof=1)
    shape = (-1,) + (1,) * (x.ndim - 2)  # γ, β per channel, broadcast over H, W
    normal = jax.nn.standardize(x, axis=axes, epsilon=layer.eps, algorithm="stable")
    return normal * own["gamma"].reshape(shape) + own["beta"].reshape(shape)


def _layer_norm(layer: Layer, x: jax.Array, own: Arrays) -> jax.Array:
    axes = tuple(range(1, x.ndim))  # every axis of a sample; γ, β of one sample's shape
    normal = jax.nn.standardize(x, axis=axes, epsilon=layer.eps, algorithm="stable")
    return normal * own["gamma"] + own["beta"]


def _cell(kind: str, own: Arrays):
    """One step (state, x_t) → (state, h_t) of rnn, lstm or gru: gates stacked in W_ih's and
    W_hh's rows in torch's order (lstm i, f, g, o; gru r, z, n, the reset gate multiplying
    the hidden side with its bias)."""
    zero = jnp.zeros(own["W_ih"].shape[0])
    b_ih, b_hh = own.get("b_ih", zero), own.get("b_hh", zero)

    def step(state, x_t):
        h = state[0]
        a, r = x_t @ own["W_ih"].T + b_ih, h @ own["W_hh"].T + b_hh
        if kind == "rnn":
            h = jnp.tanh(a + r)
            return (h,), h
        if kind == "lstm":
            i, f, g, o = jnp.split(a + r, 4, axis=-1)
            c = jax.nn.sigmoid(f) * state[1] + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h
        (a_r, a_z, a_n), (r_r, r_z, r_n) = jnp.split(a, 3, axis=-1), jnp.split(r, 3, axis=-1)
        reset, update = jax.nn.sigmoid(a_r + r_r), jax.nn.sigmoid(a_z + r_z)
        h = (1 - update) * jnp.tanh(a_n + reset * r_n) + update * h
        return (h,), h
    return step


def _recurrent(layer: Layer, x: jax.Array, own: Arrays) -> jax.Array:
    """``lax.scan`` of the cell over the steps (axis 1); h0 (and c0) broadcast over the batch."""
    state = tuple(jnp.broadcast_to(own[name], (x.shape[0], layer.width))
                  for name in ("h0", "c0") if name in own)
    _, hidden = lax.scan(_cell(layer.kind, own), state, jnp.swapaxes(x, 0, 1))
    return jnp.swapaxes(hidden, 0, 1)


# Not jax.nn.dot_product_attention: it takes the softmax in float32 whatever the inputs' dtype
# (jax/_src/nn/functions.py, "Softmax ... is always carried out in fp32"), which measured 4e-8
# relative to torch and the rule in float64 — no float64 witness. Its math, written out:
def _attention(layer: Layer, x: jax.Array, own: Arrays) -> jax.Array:
    """Self-attention: ``attend`` with query, key and value all ``x``."""
    return attend(layer, x, x, x, own)


def attend(layer: Layer, query: jax.Array, key: jax.Array, value: jax.Array, own: Arrays) -> jax.Array:
    """softmax(Q Kᵀ/√d) V per head (−∞ where key s > query t if causal), between the
    projections; query (N, Tq, D), key and value (N, Tk, D)."""
    n, steps, width = query.shape

    def heads(a):
        return a.reshape(n, a.shape[1], layer.heads, width // layer.heads)

    def linear(a, which):
        return a @ own[f"W_{which}"].T + own.get(f"b_{which}", 0.0)

    q, k, v = (heads(linear(a, which) if layer.projections else a)
               for a, which in ((query, "q"), (key, "k"), (value, "v")))
    scores = jnp.einsum("ntha,nsha->nhts", q, k) / jnp.sqrt(q.shape[-1])
    if layer.causal:
        scores = jnp.where(jnp.triu(jnp.ones((steps, key.shape[1]), bool), 1), -jnp.inf, scores)
    out = jnp.einsum("nhts,nsha->ntha", jax.nn.softmax(scores, axis=-1), v).reshape(n, steps, width)
    return linear(out, "o") if layer.projections else out


def _layer(layer: Layer, x: jax.Array, t: Arrays, masks: Arrays, stats: Arrays) -> jax.Array:
    """One layer's output; ``t`` holds every parameter by full name."""
    own = {name.partition(".")[2]: value for name, value in t.items() if name.partition(".")[0] == layer.name}
    if layer.kind in USER_LAYERS:
        return USER_LAYERS[layer.kind](x, own)
    if layer.kind == "conv2d":
        return _conv(layer, x, own)
    if layer.kind in ("max_pool2d", "avg_pool2d"):
        return _pool(layer, x)
    if layer.kind == "batch_norm":
        return _batch_norm(layer, x, own, stats)
    if layer.kind == "layer_norm":
        return _layer_norm(layer, x, own)
    if layer.kind == "dropout":
        return x * masks[layer.name] / (1.0 - layer.p)
    if layer.kind == "flatten":
        return x.reshape(x.shape[0], -1)
    if layer.kind == "dense":
        return x @ own["W"].T + own["b"] if "b" in own else x @ own["W"].T
    if layer.kind == "embedding":
        return jnp.take(own["W"], x, axis=0)
    if layer.kind in ("rnn", "lstm", "gru"):
        return _recurrent(layer, x, own)
    if layer.kind == "attention":
        return _attention(layer, x, own)
    if layer.kind == ACTIVATION:
        return activation(layer.activation)(x, None)  # jax_ref's (z, mask) form; mask for softmax only
    raise ValueError(f"{layer.name}: the jax witness has no layer kind {layer.kind!r}")


def _output(layers: tuple[Layer, ...], x: jax.Array, t: Arrays, masks: Arrays, stats: Arrays) -> jax.Array:
    for layer in layers:
        if layer.kind == "res":
            x = x + _output(layer.body, x, t, masks, stats)
        else:
            x = _layer(layer, x, t, masks, stats)
    return x


def _total(t: Arrays, stack: Stack, y: jax.Array, masks: Arrays, code: tuple,
           tokens: jax.Array | None) -> tuple[jax.Array, Arrays]:
    """(L, batch norm's batch statistics) of parameters and input ``x`` in ``t`` (or integer
    ``tokens``); ``code`` only keys the compilation (``_code``)."""
    stats: Arrays = {}
    out = _output(stack.layers, t["x"] if tokens is None else tokens, t, masks, stats)
    if stack.per_step:  # every step, padded steps weighted 0; mean over the real ones
        real = masks[PADDING].reshape(-1)
        flat = out.reshape(-1, out.shape[-1])
        target = y.reshape(-1) if stack.targets == "labels" else y.reshape(-1, y.shape[-1]).T
        per_step = LOSSES[stack.loss](flat.T, target, jnp.ones(flat.T.shape, bool))
        total = jnp.sum(per_step * real)
        return (total / jnp.sum(real) if stack.reduction == "mean" else total), stats
    # jax_ref's losses take outputs × samples with a mask of real entries: all are real here
    target = y if stack.targets == "labels" else y.T
    per_sample = LOSSES[stack.loss](out.T, target, jnp.ones(out.T.shape, bool))
    return (per_sample.mean() if stack.reduction == "mean" else per_sample.sum()), stats


def _code(stack: Stack) -> tuple:
    """The jax_ref functions the stack's activation and loss names stand for now: part of the
    compile key, so that a name registered anew (``bpcheck.user.registry``) compiles anew."""
    return (tuple(ACTIVATIONS[layer.activation.partition(":")[0]] for layer in walk(stack.layers)
                  if layer.kind == ACTIVATION), LOSSES[stack.loss],
            tuple(USER_LAYERS[layer.kind] for layer in walk(stack.layers) if layer.kind in USER_LAYERS))


# Jitted, one compile per (stack, shapes, code), with the witnesses' COMPILE_OPTIONS. Were it
# run op by op, JAX would still compile every primitive for every new shape: measured ~3x
# slower on a first call and ~45x on a repeated one (and 2.5x slower over tests/test_layers.py
# with jax's cache empty). Each program runs once or twice, so compiling dominates: without the
# backend's optimisation passes (COMPILE_OPTIONS) it compiles in about half the time (0.24–0.36 s
# against 0.56–0.98 s on small CNNs), and the results still agree with torch's to rounding
# (tests/test_layers.py). The algebraic simplifier is off too: in jax 0.10.2 it fails a check
# and aborts the process on the gradient of a strided conv2d
# (conv2d:1,k3x2,s2,p1,nobias;batch_norm;tanh;avg_pool2d:k1,s2;flatten;dense:4 on 2×3×6).
QUICK = {**COMPILE_OPTIONS, "xla_disable_hlo_passes": "algsimp"}
_value_and_grad = jax.jit(jax.value_and_grad(_total, has_aux=True), static_argnums=(1, 4),
                          compiler_options=QUICK)


@partial(jax.jit, compiler_options=QUICK)
def _sgd_step(theta: jax.Array, grads: jax.Array, lr: float) -> jax.Array:
    """One ``optax.sgd`` step on the parameters as one padded vector (``reference.flat``) with lr
    traced: one compile per padded size."""
    optimizer = optax.sgd(lr)
    updates, _ = optimizer.update(grads, optimizer.init(theta), theta)
    return optax.apply_updates(theta, updates)


def _arguments(stack: Stack, params: Params, x: np.ndarray, y: np.ndarray, masks: Params | None) -> tuple:
    """``_value_and_grad``'s arguments: parameters and x, the stack, y, masks, the code key,
    tokens (None unless x holds them). Arrays go to the device by ``jax.device_put``: in jax
    0.10.2, ``jnp.asarray`` of a NumPy array compiles a program (``jit(stage)``) for each new
    shape, 394 of the 737 compilations of tests/test_layers.py."""
    data = {} if stack.tokens else {"x": x}
    t = {name: jax.device_put(np.asarray(v, np.float64)) for name, v in (params | data).items()}
    y = jax.device_put(np.asarray(y, np.int64 if stack.targets == "labels" else np.float64))
    masks = dict(masks or {})
    if stack.per_step and PADDING not in masks:
        masks[PADDING] = np.ones((len(x), stack.shapes[-1][0]))
    masks = {name: jax.device_put(np.asarray(m, np.float64)) for name, m in masks.items()}
    return (t, _in_float64(stack), y, masks, _code(stack),
            jax.device_put(np.asarray(x, np.int64)) if stack.tokens else None)


@lru_cache(maxsize=1024)
def _in_float64(stack: Stack) -> Stack:
    """The stack as the witness computes it, in float64: the compile key of a float32 network is
    its float64 twin's, one program for both."""
    return stack if stack.dtype == "float64" else stack.replace(dtype="float64")


def loss(stack: Stack, params: Params, x: np.ndarray, y: np.ndarray, masks: Params | None = None) -> float:
    """L in float64."""
    (value, _), _ = _value_and_grad(*_arguments(stack, params, x, y, masks))  # gradients' compilation
    return float(value)


def gradients(stack: Stack, params: Params, x: np.ndarray, y: np.ndarray,
              masks: Params | None = None) -> Params:
    """∂L/∂θ and ∂L/∂x (key ``x``) by ``jax.value_and_grad``, float64."""
    _, grads = _value_and_grad(*_arguments(stack, params, x, y, masks))
    return {name: np.asarray(g, np.float64) for name, g in grads.items()}


def _running(stack: Stack, buffers: Params, stats: Arrays) -> Params:
    """r ← (1 − m)·r + m·(batch μ, unbiased variance), torch's update of running statistics."""
    layers = layers_of(stack)
    new = {}
    for name, value in buffers.items():
        m = layers[name.partition(".")[0]].momentum
        new[name] = (1 - m) * np.asarray(value, np.float64) + m * np.asarray(stats[name], np.float64)
    return new


def gradients_and_sgd_step(stack: Stack, params: Params, buffers: Params, x: np.ndarray, y: np.ndarray,
                           lr: float, masks: Params | None = None) -> tuple[Params, Params, Params]:
    """(∂L/∂θ and ∂L/∂x, θ after one ``optax.sgd`` step, the running statistics after torch's
    update), float64."""
    return started_gradients_and_sgd_step(stack, params, buffers, x, y, lr, masks)()


def started_gradients_and_sgd_step(stack: Stack, params: Params, buffers: Params, x: np.ndarray,
                                   y: np.ndarray, lr: float, masks: Params | None = None
                                   ) -> Callable[[], tuple[Params, Params, Params]]:
    """``gradients_and_sgd_step`` started: jax dispatches its programs and returns at once, and
    the call returned waits for their results (the caller's own work runs meanwhile)."""
    arguments = _arguments(stack, params, x, y, masks)
    (_, stats), grads = _value_and_grad(*arguments)
    theta, named = flattened({name: arguments[0][name] for name in params})
    new = named(_sgd_step(theta, flattened({name: grads[name] for name in params})[0], lr))
    return lambda: ({name: np.asarray(g, np.float64) for name, g in grads.items()},
                    {name: np.asarray(v, np.float64) for name, v in new.items()},
                    _running(stack, buffers, stats))
