"""Witness 2: JAX autodiff with x64 enabled (asserted); the SGD step is ``optax.sgd``.

Built from ``jax.nn``, ``jax.numpy`` and ``optax.losses``; it reads only the model description
from ``manual.spec``. Data are laid out features × samples (the torch witness uses rows).

Speed without a second formula: the witness pads every width to one bucket and the batch to
another, gives padded units zero weights in and out, masks padded outputs and samples out of
the loss (and out of softmax normalisation), and chooses each layer's activation with
``lax.switch`` on a traced code — so one compiled function serves every shape and activation
assignment of a (depth, bias style, loss, reduction). ``plain_gradients`` is the unpadded
``jax.grad`` the padded one is tested against.
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

from functools import cache  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax import lax  # noqa: E402

from manual.spec import LOSS_TARGETS, Params, Spec, parse_activation  # noqa: E402


def require_x64() -> None:
    """Fail loudly unless JAX really computes in float64."""
    if not jax.config.jax_enable_x64 or jnp.asarray(1.0).dtype != jnp.float64:
        raise RuntimeError("JAX x64 mode is off: the jax witness would compute in float32")


require_x64()

#: name → factory(parameter) → function of (units, N) pre-activations and the output mask.
ACTIVATIONS = {
    "sigmoid": lambda _: lambda z, mask: jax.nn.sigmoid(z),
    "tanh": lambda _: lambda z, mask: jnp.tanh(z),
    "relu": lambda _: lambda z, mask: jax.nn.relu(z),
    "leaky_relu": lambda slope: lambda z, mask: jax.nn.leaky_relu(z, negative_slope=slope),
    "softplus": lambda _: lambda z, mask: jax.nn.softplus(z),
    "identity": lambda _: lambda z, mask: z,
    "softmax": lambda _: lambda z, mask: jax.nn.softmax(z, axis=0, where=mask),
}


def activation(name: str):
    """The function (z, mask) → a that a spec's activation name stands for."""
    base, parameter = parse_activation(name)
    return ACTIVATIONS[base](parameter)


def _bce(p, y, mask):
    """Binary cross-entropy of probabilities, each log clamped at −100 (torch's convention)."""
    log_p, log_q = jnp.maximum(jnp.log(p), -100.0), jnp.maximum(jnp.log1p(-p), -100.0)
    return jnp.where(mask, -(y * log_p + (1 - y) * log_q), 0.0).sum(axis=0)


#: name → per-sample loss of (C, N) predictions and (C, N) targets or (N,) labels, given the
#: mask of real outputs.
LOSSES = {
    "half-sse": lambda p, y, mask: jnp.where(mask, optax.losses.l2_loss(p, y), 0.0).sum(axis=0),
    "mse": lambda p, y, mask: (jnp.where(mask, optax.losses.squared_error(p, y), 0.0).sum(axis=0)
                               / jnp.maximum(mask.sum(axis=0), 1)),
    "bce": _bce,
    "bce-logits": lambda z, y, mask: jnp.where(
        mask, optax.losses.sigmoid_binary_cross_entropy(z, y), 0.0).sum(axis=0),
    "softmax-ce": lambda z, y, mask: optax.losses.softmax_cross_entropy(z, y, axis=0, where=mask),
    "softmax-ce-labels": lambda z, y, mask: optax.losses.softmax_cross_entropy_with_integer_labels(
        z, y, axis=0, where=mask),
}

#: How many times the padded gradient has been traced (= compiled); see ``compile_count``.
_TRACES = {"padded": 0}


def _cols(spec: Spec, array: np.ndarray) -> np.ndarray:
    if LOSS_TARGETS[spec.loss] == "labels" and np.asarray(array).ndim == 1:
        return np.asarray(array, dtype=np.int64)
    return np.asarray(array if spec.layout == "cols" else array.T, dtype=np.float64)


def _as_float64(params: Params) -> Params:
    return {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}


def _total(reduction: str, weights: list, per_sample, n_real, l2):
    """reduce_n ℓ_n + λ/2 Σ_k ‖W_k‖² (bias columns already left out of ``weights``)."""
    total = per_sample.sum() / n_real if reduction == "mean" else per_sample.sum()
    return total + 0.5 * l2 * sum(jnp.sum(w * w) for w in weights)


def _loss(params: dict, x: jnp.ndarray, y: jnp.ndarray, spec: Spec) -> jnp.ndarray:
    """L on unpadded arrays: the plain formulation."""
    a = x
    for k, name in enumerate(spec.activations, start=1):
        if spec.bias == "node":
            a = jnp.concatenate([a, jnp.ones((1, a.shape[1]), a.dtype)], axis=0)
        z = params[f"W{k}"] @ a
        if spec.bias == "vector":
            z = z + params[f"b{k}"][:, None]
        a = activation(name)(z, jnp.ones(z.shape, bool))
    per_sample = LOSSES[spec.loss](a, y, jnp.ones(a.shape, bool))
    weights = [params[f"W{k}"][:, : spec.sizes[k - 1]] for k in range(1, spec.depth + 1)]
    return _total(spec.reduction, weights, per_sample, x.shape[1], spec.l2)


_plain_grad = jax.jit(jax.grad(_loss), static_argnums=3)


def bucket(n: int, floor: int) -> int:
    """The padded size for n: the next power of two, at least ``floor``."""
    return max(floor, 1 << (n - 1).bit_length())


def _padded_loss(padded, x, y, out_mask, sample_mask, n_real, codes, slopes, l2, key):
    r"""L on zero-padded arrays; ∂L/∂θ on the real region equals the unpadded one exactly
    (padded units have zero weights in and out; padded outputs and samples are masked)."""
    _TRACES["padded"] += 1  # runs at trace time only
    depth, bias, loss_name, reduction, branches = key
    a, width = x, x.shape[0]
    for k in range(1, depth + 1):
        if bias == "node":
            a = jnp.concatenate([a, jnp.ones((1, a.shape[1]), a.dtype)], axis=0)
        z = padded[f"W{k}"] @ a
        if bias == "vector":
            z = z + padded[f"b{k}"][:, None]
        a = lax.switch(codes[k - 1], branches, z, slopes[k - 1], out_mask)
    per_sample = jnp.where(sample_mask, LOSSES[loss_name](a, y, out_mask), 0.0)
    weights = [padded[f"W{k}"][:, :width] for k in range(1, depth + 1)]
    return _total(reduction, weights, per_sample, n_real, l2)


_padded_grad = jax.jit(jax.grad(_padded_loss), static_argnums=9)


@cache
def _branches(names: tuple[str, ...]) -> tuple:
    """Each named activation as a ``lax.switch`` branch (z, parameter, mask) → a (cached, so
    the tuple is the same object — and the same compile key — for the same registry)."""

    def branch(name):
        return lambda z, parameter, mask: ACTIVATIONS[name](parameter)(z, mask)

    return tuple(branch(name) for name in names)


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


def _pad_data(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    block = np.zeros(shape, dtype=array.dtype)
    block[tuple(slice(0, n) for n in array.shape)] = array
    return block


def _padded_gradients(spec: Spec, params: Params, x: np.ndarray, y: np.ndarray):
    """Padded parameters and ∂L/∂θ, through one compiled function per structure."""
    n = x.shape[1]
    width, batch = bucket(max(spec.sizes), 16), bucket(n, 8)
    node = 1 if spec.bias == "node" else 0
    names = tuple(ACTIVATIONS)
    codes, slopes = [], []
    for name in spec.activations:
        base, parameter = parse_activation(name)
        codes.append(names.index(base))
        slopes.append(0.0 if parameter is None else parameter)
    out_mask = _pad_data(np.ones((spec.sizes[-1], n), bool), (width, batch))
    sample_mask = _pad_data(np.ones(n, bool), (batch,))
    y_pad = _pad_data(y, (batch,) if y.ndim == 1 else (width, batch))
    key = (spec.depth, spec.bias, spec.loss, spec.reduction, _branches(names))  # static part
    padded = _pad_params(params, width, node)
    grads = _padded_grad(padded, _pad_data(x, (width, batch)), y_pad, out_mask, sample_mask,
                         float(n), np.array(codes), np.array(slopes), spec.l2, key)
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
    """∂L/∂θ by ``jax.grad`` (padded, compiled once per structure), float64."""
    _, grads, (width, node) = _padded_gradients(spec, _as_float64(params), _cols(spec, X),
                                                _cols(spec, Y))
    return _unpad(grads, params, width, node)


def sgd_step(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, lr: float) -> Params:
    """Parameters after one ``optax.sgd`` step, float64."""
    padded, grads, (width, node) = _padded_gradients(spec, _as_float64(params), _cols(spec, X),
                                                     _cols(spec, Y))
    return _unpad(_sgd(padded, grads, lr), params, width, node)
