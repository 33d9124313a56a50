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


def _cols(spec: Spec, array: np.ndarray) -> jnp.ndarray:
    array = array if spec.layout == "cols" else array.T
    return jnp.asarray(np.asarray(array, dtype=np.float64))


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


_grad = jax.jit(jax.grad(_loss), static_argnums=3)


def _as_jax(params: Params) -> dict[str, jnp.ndarray]:
    return {name: jnp.asarray(np.asarray(value, dtype=np.float64)) for name, value in params.items()}


def loss(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray) -> float:
    """L in float64."""
    return float(_loss(_as_jax(params), _cols(spec, X), _cols(spec, Y), spec))


def gradients(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """∂L/∂θ by ``jax.grad``, float64."""
    grads = _grad(_as_jax(params), _cols(spec, X), _cols(spec, Y), spec)
    return {name: np.asarray(grads[name]) for name in params}


def sgd_step(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, lr: float) -> Params:
    """Parameters after one ``optax.sgd`` step, float64."""
    current = _as_jax(params)
    optimizer = optax.sgd(lr)
    grads = _grad(current, _cols(spec, X), _cols(spec, Y), spec)
    updates, _ = optimizer.update(grads, optimizer.init(current), current)
    new = optax.apply_updates(current, updates)
    return {name: np.asarray(new[name]) for name in params}
