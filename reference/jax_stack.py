"""Witness 2 for networks of layers (``manual.stack``): JAX autodiff in float64, built from
``lax.conv_general_dilated`` (convolution), ``lax.reduce_window`` (max and average pooling),
``jax.nn.standardize`` (batch norm in training mode, layer norm) and ``jax.numpy`` (dense,
flatten, dropout with a given mask: x·mask/(1 − p)), with the activations and per-sample losses
of ``reference.jax_ref``. Batch norm's running statistics are updated as torch does, the SGD step
is ``optax.sgd``. Reads only the model description from ``manual.stack``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from manual.spec import ACTIVATION, Layer, Stack, layers_of, stride, walk
from reference.jax_ref import ACTIVATIONS, LOSSES, activation, require_x64

require_x64()  # jax_ref switches x64 on at import; fail loudly if it did not take

TITLE = "jax"
Params = dict[str, np.ndarray]
Arrays = dict[str, jax.Array]
#: kind → a user's jax forward ``f(x, params) → out`` (``bpcheck.user_layer`` registers them)
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


def _total(t: Arrays, stack: Stack, y: jax.Array, masks: Arrays, code: tuple) -> tuple[jax.Array, Arrays]:
    """(L, batch norm's batch statistics) of parameters and input ``x`` in ``t``; ``code`` only
    keys the compilation (``_code``)."""
    stats: Arrays = {}
    out = _output(stack.layers, t["x"], t, masks, stats)
    # jax_ref's losses take outputs × samples with a mask of real entries: all are real here
    target = y if stack.targets == "labels" else y.T
    per_sample = LOSSES[stack.loss](out.T, target, jnp.ones(out.T.shape, bool))
    return (per_sample.mean() if stack.reduction == "mean" else per_sample.sum()), stats


def _code(stack: Stack) -> tuple:
    """The jax_ref functions the stack's activation and loss names stand for now: part of the
    compile key, so that a name registered anew (``bpcheck.registry``) compiles anew."""
    return (tuple(ACTIVATIONS[layer.activation.partition(":")[0]] for layer in walk(stack.layers)
                  if layer.kind == ACTIVATION), LOSSES[stack.loss],
            tuple(USER_LAYERS[layer.kind] for layer in walk(stack.layers) if layer.kind in USER_LAYERS))


# Jitted, one compile per (stack, shapes, code): run op by op, JAX still compiles every primitive
# for every new shape, which measured ~3x slower on a first call and ~45x on a repeated one. Each
# program runs once or twice, so compiling dominates: without the backend's optimisation passes
# it compiles in about half the time (0.24–0.36 s against 0.56–0.98 s on small CNNs), and the
# results still agree with torch's to rounding (tests/test_layers.py).
QUICK = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
_value_and_grad = jax.jit(jax.value_and_grad(_total, has_aux=True), static_argnums=(1, 4),
                          compiler_options=QUICK)


@partial(jax.jit, compiler_options=QUICK)
def _sgd(theta: Arrays, grads: Arrays, lr: float) -> Arrays:
    """One ``optax.sgd`` step (lr traced: one compile per parameter structure)."""
    optimizer = optax.sgd(lr)
    updates, _ = optimizer.update(grads, optimizer.init(theta), theta)
    return optax.apply_updates(theta, updates)


def _arguments(stack: Stack, params: Params, x: np.ndarray, y: np.ndarray, masks: Params | None) -> tuple:
    """``_value_and_grad``'s arguments: parameters and x, the stack, y, masks, the code key."""
    t = {name: jnp.asarray(np.asarray(v, np.float64)) for name, v in (params | {"x": x}).items()}
    y = jnp.asarray(np.asarray(y, np.int64 if stack.targets == "labels" else np.float64))
    masks = {name: jnp.asarray(np.asarray(m, np.float64)) for name, m in (masks or {}).items()}
    return t, stack, y, masks, _code(stack)


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
        new[name] = np.asarray((1 - m) * np.asarray(value, np.float64) + m * stats[name], np.float64)
    return new


def gradients_and_sgd_step(stack: Stack, params: Params, buffers: Params, x: np.ndarray, y: np.ndarray,
                           lr: float, masks: Params | None = None) -> tuple[Params, Params, Params]:
    """(∂L/∂θ and ∂L/∂x, θ after one ``optax.sgd`` step, the running statistics after torch's
    update), float64."""
    arguments = _arguments(stack, params, x, y, masks)
    (_, stats), grads = _value_and_grad(*arguments)
    new = _sgd({name: arguments[0][name] for name in params}, {name: grads[name] for name in params}, lr)
    return ({name: np.asarray(g, np.float64) for name, g in grads.items()},
            {name: np.asarray(v, np.float64) for name, v in new.items()}, _running(stack, buffers, stats))
