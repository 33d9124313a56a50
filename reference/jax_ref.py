"""Witness 2: JAX autodiff with x64 enabled (asserted); the SGD step is ``optax.sgd``.

Built from ``jax.nn``/``jax.numpy`` and ``optax.losses``; it reads only the model description
from ``manual.spec``. Data are laid out features × samples (the other witness uses rows).
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from manual.spec import Params, Spec  # noqa: E402


def require_x64() -> None:
    """Fail loudly unless JAX really computes in float64."""
    if not jax.config.jax_enable_x64 or jnp.asarray(1.0).dtype != jnp.float64:
        raise RuntimeError("JAX x64 mode is off: the jax witness would compute in float32")


require_x64()

ACTIVATIONS = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
}

#: Per-sample loss of (C, N) predictions and targets.
LOSSES = {
    "half-sse": lambda p, y: optax.losses.l2_loss(p, y).sum(axis=0),
}


def _cols(spec: Spec, array: np.ndarray) -> np.ndarray:
    return np.asarray(array if spec.layout == "cols" else array.T, dtype=np.float64)


def _as_float64(params: Params) -> Params:
    return {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}


def _loss(params: dict, x: jnp.ndarray, y: jnp.ndarray, spec: Spec) -> jnp.ndarray:
    a = x
    for k, name in enumerate(spec.activations, start=1):
        if spec.bias == "node":
            a = jnp.concatenate([a, jnp.ones((1, a.shape[1]), a.dtype)], axis=0)
        z = params[f"W{k}"] @ a
        if spec.bias == "vector":
            z = z + params[f"b{k}"][:, None]
        a = ACTIVATIONS[name](z)
    per_sample = LOSSES[spec.loss](a, y)
    return per_sample.mean() if spec.reduction == "mean" else per_sample.sum()


_plain_grad = jax.jit(jax.grad(_loss), static_argnums=3)

#: How many times the padded gradient has been traced (= compiled); see ``compile_count``.
_TRACES = {"padded": 0}


def bucket(n: int, floor: int) -> int:
    """The padded size for n: the next power of two, at least ``floor``."""
    return max(floor, 1 << (n - 1).bit_length())


def _padded_loss(padded: dict, x, y, mask, n_real, spec: Spec):
    r"""L on zero-padded arrays: padded units have zero weights in and out, padded samples and
    outputs are masked out of ℓ, and ``mean`` divides by the real N — so ∂L/∂θ on the real
    region is exactly that of the unpadded network (the padding only adds zero terms)."""
    _TRACES["padded"] += 1  # runs at trace time only
    a = x
    for k, name in enumerate(spec.activations, start=1):
        if spec.bias == "node":
            a = jnp.concatenate([a, jnp.ones((1, a.shape[1]), a.dtype)], axis=0)
        z = padded[f"W{k}"] @ a
        if spec.bias == "vector":
            z = z + padded[f"b{k}"][:, None]
        a = ACTIVATIONS[name](z)
    per_sample = LOSSES[spec.loss](jnp.where(mask, a, y), y) * mask[0]
    total = per_sample.sum()
    return total / n_real if spec.reduction == "mean" else total


_padded_grad = jax.jit(jax.grad(_padded_loss), static_argnums=5)


def _pad_params(params: Params, width: int, node: int) -> dict[str, np.ndarray]:
    """Weights into (width, width + node) blocks, the bias-node column moved to the last one."""
    padded = {}
    for name, value in params.items():
        block = np.zeros((width,) if value.ndim == 1 else (width, width + node))
        if value.ndim == 1:
            block[: value.shape[0]] = value
        else:
            inputs = value.shape[1] - node
            block[: value.shape[0], :inputs] = value[:, :inputs]
            block[: value.shape[0], width:] = value[:, inputs:]
        padded[name] = block
    return padded


def _unpad(padded: dict, params: Params, width: int, node: int) -> Params:
    """The real region of each padded array (parameters or gradients), bias column put back last."""
    real = {}
    for name, value in params.items():
        block = np.asarray(padded[name])
        if value.ndim == 1:
            real[name] = block[: value.shape[0]]
        else:
            out, inputs = value.shape[0], value.shape[1] - node
            real[name] = np.concatenate([block[:out, :inputs], block[:out, width:]], axis=1)
    return real


def _pad_data(array: np.ndarray, width: int, batch: int) -> np.ndarray:
    block = np.zeros((width, batch))
    block[: array.shape[0], : array.shape[1]] = array
    return block


def _padded_gradients(spec: Spec, params: Params, x: np.ndarray, y: np.ndarray):
    """Padded parameters and ∂L/∂θ, through one compiled function per (structure, buckets)."""
    width, batch = bucket(max(spec.sizes), 16), bucket(x.shape[1], 8)
    node = 1 if spec.bias == "node" else 0
    mask = _pad_data(np.ones(y.shape), width, batch).astype(bool)
    structure = spec.replace(sizes=(width,) * len(spec.sizes))  # the static key: no real sizes
    padded = _pad_params(params, width, node)
    grads = _padded_grad(padded, _pad_data(x, width, batch), _pad_data(y, width, batch), mask,
                         float(x.shape[1]), structure)
    return padded, grads, (width, node)


@jax.jit
def _sgd(params: dict, grads: dict, lr: float) -> dict:
    """One ``optax.sgd`` step (jitted, so padded shapes compile once)."""
    optimizer = optax.sgd(lr)
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    return optax.apply_updates(params, updates)


def compile_count() -> int:
    """Number of compilations of the padded gradient so far in this process."""
    return _TRACES["padded"]


def plain_gradients(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """∂L/∂θ by ``jax.grad`` on the unpadded arrays (compiles once per shape)."""
    grads = _plain_grad(_as_float64(params), _cols(spec, X), _cols(spec, Y), spec)
    return {name: np.asarray(grads[name]) for name in params}


def loss(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray) -> float:
    """L in float64."""
    return float(_loss(_as_float64(params), _cols(spec, X), _cols(spec, Y), spec))


def gradients(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """∂L/∂θ by ``jax.grad`` (padded to buckets, compiled once per structure), float64."""
    _, grads, (width, node) = _padded_gradients(spec, _as_float64(params), _cols(spec, X), _cols(spec, Y))
    return _unpad(grads, params, width, node)


def sgd_step(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, lr: float) -> Params:
    """Parameters after one ``optax.sgd`` step, float64."""
    padded, grads, (width, node) = _padded_gradients(spec, _as_float64(params), _cols(spec, X),
                                                     _cols(spec, Y))
    return _unpad(_sgd(padded, grads, lr), params, width, node)
