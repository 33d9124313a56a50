"""Witness 2: JAX autodiff with x64 enabled (asserted); the SGD step is ``optax.sgd``.

Built from ``jax.nn``, ``jax.numpy`` and ``optax.losses``; it reads only the model description
from ``manual.spec``. Data are laid out features × samples (the torch witness uses rows).

Speed without a second formula: the witness pads every width to one bucket and the batch to
another, gives padded units zero weights in and out, masks padded outputs and samples out of
the loss (and out of softmax normalisation), treats a bias node's column as a bias vector,
chooses each layer's activation with ``lax.switch`` on a traced code and takes the reduction,
λ and the biases' λ (0 unless ``l2_biases``) as traced scalars — so one compiled function
serves every shape, activation assignment, bias style, reduction and penalty convention of a
(depth, loss). ``plain_gradients`` is the unpadded ``jax.grad`` the padded one is tested
against.
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

from collections.abc import Callable  # noqa: E402
from functools import cache, partial  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax import lax  # noqa: E402

from manual.spec import Params, Spec, parse_activation, target_kind  # noqa: E402
from reference.flat import bucket  # noqa: E402

#: XLA options of every program the jax witnesses compile. Compiling is most of a fresh test
#: run's jax time (backend compiles: 502 of the 1,377 CPU-s of `make test` with jax's cache
#: empty), and our programs are small: XLA's newer CPU fusion emitters compile them 2.2–2.6×
#: slower than the classic ones (5 networks of layers: 0.70–0.94 s against 1.8–2.3 s), and
#: without the backend's optimisation passes the padded MLP gradients compile 3.5× faster (six
#: structures: 1.8 s against 6.1–6.9 s) and run as fast (0.40–0.50 ms a call against
#: 0.40–0.44). Results differ by rounding only (≤ 1.6e−15 relative on those networks). XLA splits
#: a program's code into modules compiled by a thread pool; one module compiles small programs in
#: about two thirds of the time (8 networks of layers: 0.72–0.92 s against 1.19–1.39 s, 3 runs
#: each of ``jit(...).lower(...).compile()``), and each module holds its own memory
#: mappings (``bpcheck.core.runtime.bounded_programs``).
COMPILE_OPTIONS = {"xla_cpu_use_fusion_emitters": False, "xla_backend_optimization_level": 0,
                   "xla_llvm_disable_expensive_passes": True, "xla_cpu_parallel_codegen_split_count": 1}


def require_x64() -> None:
    """Fail loudly unless JAX really computes in float64."""
    if not jax.config.jax_enable_x64 or jnp.asarray(1.0).dtype != jnp.float64:
        raise RuntimeError("JAX x64 mode is off: the jax witness would compute in float32")


require_x64()

TITLE = "jax"  # as reports name this witness

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
    """Binary cross-entropy of probabilities, each log clamped at −100 (torch's convention).

    The logs see max(p, tiny) and max(1 − p, tiny), so p = 0 or 1 gives a zero gradient, not
    0·∞ = NaN."""
    tiny = jnp.finfo(p.dtype).tiny
    log_p = jnp.maximum(jnp.log(jnp.maximum(p, tiny)), -100.0)
    log_q = jnp.maximum(jnp.log(jnp.maximum(1.0 - p, tiny)), -100.0)
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

#: The losses above, which mask padded outputs; any other function (a user's loss, even under a
#: built-in name) is computed unpadded.
MASKING_LOSSES = tuple(LOSSES.values())


def _loss_branch(name: str):
    """Loss ``name`` as a ``lax.switch`` branch (a, float targets, labels, mask) → per-sample
    losses: every padded gradient takes both kinds of target, and uses the one its loss reads."""
    loss, labels = LOSSES[name], target_kind(name) == "labels"
    return lambda a, values, classes, mask: loss(a, classes if labels else values, mask)


#: The masking losses as switch branches, in MASKING_LOSSES's order: one compiled function
#: serves every built-in loss.
LOSS_BRANCHES = tuple(_loss_branch(name) for name in LOSSES)

#: How many times the padded gradient has been traced (= compiled); see ``compile_count``.
_TRACES = {"padded": 0}


def _cols(spec: Spec, array: np.ndarray) -> np.ndarray:
    if target_kind(spec.loss) == "labels" and np.asarray(array).ndim == 1:
        return np.asarray(array, dtype=np.int64)
    return np.asarray(array if spec.layout == "cols" else array.T, dtype=np.float64)


def _as_float64(params: Params) -> Params:
    return {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}


def _code(spec: Spec) -> tuple:
    """The functions the spec's names stand for now, (activation factories, loss): part of the
    compile key, so that a name registered anew with other code compiles anew."""
    return tuple(ACTIVATIONS[parse_activation(name)[0]] for name in spec.activations), LOSSES[spec.loss]


def _loss(params: dict, x: jnp.ndarray, y: jnp.ndarray, spec: Spec, code: tuple) -> jnp.ndarray:
    """L on unpadded arrays: the plain formulation, with the functions ``_code`` gives."""
    factories, loss_function = code
    a = x
    for k, (name, factory) in enumerate(zip(spec.activations, factories, strict=True), start=1):
        if spec.bias == "node":
            a = jnp.concatenate([a, jnp.ones((1, a.shape[1]), a.dtype)], axis=0)
        z = params[f"W{k}"] @ a
        if spec.bias == "vector":
            z = z + params[f"b{k}"][:, None]
        a = factory(parse_activation(name)[1])(z, jnp.ones(z.shape, bool))
    per_sample = loss_function(a, y, jnp.ones(a.shape, bool))
    total = per_sample.mean() if spec.reduction == "mean" else per_sample.sum()
    weights = [params[f"W{k}"][:, : spec.sizes[k - 1]] for k in range(1, spec.depth + 1)]
    if spec.l2_biases:
        weights += [params[f"b{k}"] if spec.bias == "vector" else params[f"W{k}"][:, spec.sizes[k - 1]]
                    for k in range(1, spec.depth + 1)]
    return total + 0.5 * spec.l2 * sum(jnp.sum(w * w) for w in weights)


_plain_grad = jax.jit(jax.grad(_loss), static_argnums=(3, 4), compiler_options=COMPILE_OPTIONS)


def _padded_loss(padded, x, y, labels, out_mask, sample_mask, scale, codes, slopes, active, loss_code,
                 l2, l2_bias, key):
    r"""L on zero-padded arrays; ∂L/∂θ on the real region equals the unpadded one exactly
    (padded units have zero weights in and out; padded outputs and samples are masked; a
    padded layer after the last, ``active`` false, passes a through: a = where(active, f(z), a),
    whose vjp sends nothing into its zero weights).

    Both bias styles share this function: a bias node's column of W is the bias vector b.
    ``l2_bias`` is the penalty's λ on the biases: λ when it covers them, else 0 (traced, so
    either convention runs the same compiled function). The loss is LOSS_BRANCHES[loss_code], of
    the float targets ``y`` or the class ``labels``.
    """
    _TRACES["padded"] += 1  # runs at trace time only
    depth, branches = key
    a = x
    for k in range(1, depth + 1):
        z = padded[f"W{k}"] @ a + padded[f"b{k}"][:, None]
        a = jnp.where(active[k - 1], lax.switch(codes[k - 1], branches, z, slopes[k - 1], out_mask), a)
    per_sample = jnp.where(sample_mask, lax.switch(loss_code, LOSS_BRANCHES, a, y, labels, out_mask), 0.0)
    penalty = sum(jnp.sum(padded[f"W{k}"] ** 2) for k in range(1, depth + 1))
    bias_penalty = sum(jnp.sum(padded[f"b{k}"] ** 2) for k in range(1, depth + 1))
    return scale * per_sample.sum() + 0.5 * l2 * penalty + 0.5 * l2_bias * bias_penalty


_padded_grad = jax.jit(jax.grad(_padded_loss), static_argnums=13, compiler_options=COMPILE_OPTIONS)


@cache
def _branches(factories: tuple) -> tuple:
    """Each activation factory as a ``lax.switch`` branch (z, parameter, mask) → a, then a
    pass-through for padded layers (cached, so the tuple is the same object — and the same
    compile key — for the same implementations; a name registered anew compiles anew)."""

    def branch(factory):
        return lambda z, parameter, mask: factory(parameter)(z, mask)

    # and last, the padded layers' pass-through (not a registered name, which a user may replace)
    return (*(branch(factory) for factory in factories), lambda z, parameter, mask: z)


def _pad_params(spec: Spec, params: Params, width: int, depth: int) -> dict[str, np.ndarray]:
    """W_k into (width, width) blocks and b_k into (width,) — a bias node's column becomes b_k;
    zeros for the padded layers up to ``depth``."""
    padded = {f"{name}{k}": np.zeros((width, width) if name == "W" else width)
              for k in range(spec.depth + 1, depth + 1) for name in "Wb"}
    for k in range(1, spec.depth + 1):
        out, inputs = spec.sizes[k], spec.sizes[k - 1]
        W, b = np.zeros((width, width)), np.zeros(width)
        W[:out, :inputs] = params[f"W{k}"][:, :inputs]
        b[:out] = params[f"W{k}"][:, inputs] if spec.bias == "node" else params[f"b{k}"]
        padded[f"W{k}"], padded[f"b{k}"] = W, b
    return padded


def _unpad(spec: Spec, padded: dict) -> Params:
    """The real region of padded arrays (parameters or gradients), keyed like the spec's params."""
    real = {}
    for k in range(1, spec.depth + 1):
        out, inputs = spec.sizes[k], spec.sizes[k - 1]
        W, b = np.asarray(padded[f"W{k}"])[:out, :inputs], np.asarray(padded[f"b{k}"])[:out]
        if spec.bias == "node":
            real[f"W{k}"] = np.concatenate([W, b[:, None]], axis=1)
        else:
            real[f"W{k}"], real[f"b{k}"] = W, b
    return real


def _pad_data(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    block = np.zeros(shape, dtype=array.dtype)
    block[tuple(slice(0, n) for n in array.shape)] = array
    return block


def _padded_gradients(spec: Spec, params: Params, x: np.ndarray, y: np.ndarray):
    """Padded parameters and ∂L/∂θ, through one compiled function per padded depth, width and
    batch (powers of two from 4, 16 and 8) and set of registered activation functions; every
    built-in loss shares it (a traced switch, as the activations are)."""
    n = x.shape[1]
    width, batch, depth = bucket(max(spec.sizes), 16), bucket(n, 8), bucket(spec.depth, 4)
    names = tuple(ACTIVATIONS)
    codes, slopes = [len(names)] * depth, [0.0] * depth  # a padded layer: _branches' pass-through
    for k, name in enumerate(spec.activations):
        base, parameter = parse_activation(name)
        codes[k], slopes[k] = names.index(base), 0.0 if parameter is None else parameter
    out_mask = _pad_data(np.ones((spec.sizes[-1], n), bool), (width, batch))
    sample_mask = _pad_data(np.ones(n, bool), (batch,))
    y_pad = np.zeros((width, batch)) if y.ndim == 1 else _pad_data(y, (width, batch))
    labels = _pad_data(y, (batch,)) if y.ndim == 1 else np.zeros(batch, np.int64)
    loss_code = next(i for i, loss in enumerate(MASKING_LOSSES) if loss is LOSSES[spec.loss])
    scale = 1.0 / n if spec.reduction == "mean" else 1.0
    padded = _pad_params(spec, params, width, depth)
    grads = _padded_grad(padded, _pad_data(x, (width, batch)), y_pad, labels, out_mask, sample_mask,
                         scale, np.array(codes), np.array(slopes), np.arange(depth) < spec.depth,
                         loss_code, spec.l2, spec.l2 if spec.l2_biases else 0.0,
                         (depth, _branches(tuple(ACTIVATIONS.values()))))
    return padded, grads


@partial(jax.jit, compiler_options=COMPILE_OPTIONS)
def _sgd(params: dict, grads: dict, lr: float) -> dict:
    """One ``optax.sgd`` step (jitted, so padded shapes compile once)."""
    optimizer = optax.sgd(lr)
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    return optax.apply_updates(params, updates)


#: The most entries the padded arrays may hold (8 MB of float64). Padding stacks every layer into
#: one square of the widest layer's bucket: 4-5000-3 would hold 4·8192·8193 entries for 35,000
#: real ones (7 GB with its gradient and step); such a network takes the unpadded path, compiled
#: for its own shapes.
PADDING_LIMIT = 2**20


def _padding_too_large(spec: Spec, X: np.ndarray) -> bool:
    width, depth = bucket(max(spec.sizes), 16), bucket(spec.depth, 4)
    return depth * width * (width + 1) + width * bucket(X.size // spec.sizes[0], 8) > PADDING_LIMIT


def compile_count() -> int:
    """Number of compilations of the padded gradient so far in this process."""
    return _TRACES["padded"]


def plain_gradients(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """∂L/∂θ by ``jax.grad`` on the unpadded arrays (compiles once per shape)."""
    grads = _plain_grad(_as_float64(params), _cols(spec, X), _cols(spec, Y), spec, _code(spec))
    return {name: np.asarray(grads[name]) for name in params}


def loss(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray) -> float:
    """L in float64."""
    return float(_loss(_as_float64(params), _cols(spec, X), _cols(spec, Y), spec, _code(spec)))


def gradients(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """∂L/∂θ by ``jax.grad`` (padded, compiled once per padded structure), float64."""
    return gradients_and_sgd_step(spec, params, X, Y, None)[0]


def sgd_step(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, lr: float) -> Params:
    """Parameters after one ``optax.sgd`` step, float64."""
    return gradients_and_sgd_step(spec, params, X, Y, lr)[1]


def gradients_and_sgd_step(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray,
                           lr: float | None) -> tuple[Params, Params | None]:
    """∂L/∂θ and, when ``lr`` is given, the parameters after one ``optax.sgd`` step."""
    return started_gradients_and_sgd_step(spec, params, X, Y, lr)()


def started_gradients_and_sgd_step(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray,
                                   lr: float | None) -> Callable[[], tuple[Params, Params | None]]:
    """``gradients_and_sgd_step`` started: jax dispatches its programs and returns at once, and
    the call returned waits for their results (the caller's own work runs meanwhile)."""
    if not any(LOSSES[spec.loss] is loss for loss in MASKING_LOSSES) or _padding_too_large(spec, X):
        current = _as_float64(params)
        grads = _plain_grad(current, _cols(spec, X), _cols(spec, Y), spec, _code(spec))
        new = None if lr is None else _sgd(current, grads, lr)
        return lambda: ({name: np.asarray(g) for name, g in grads.items()},
                        None if new is None else {name: np.asarray(v) for name, v in new.items()})
    padded, grads = _padded_gradients(spec, _as_float64(params), _cols(spec, X), _cols(spec, Y))
    stepped = None if lr is None else _sgd(padded, grads, lr)
    return lambda: (_unpad(spec, grads), None if stepped is None else _unpad(spec, stepped))
