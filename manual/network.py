r"""The derived rule: forward pass, backward δ recursion and the SGD update, for any depth.

Notation (features × samples, as in the seed): a_0 = X, and for layers k = 1 … L

.. math::
    ã_{k-1} = [a_{k-1}; 1ᵀ] \text{ (bias node) or } a_{k-1} \text{ (bias vector)},\qquad
    z_k = W_k ã_{k-1} (+ b_k 1ᵀ),\qquad a_k = σ_k(z_k),\qquad L = \mathrm{reduce}_n\, ℓ(a_L, Y).

Derivation (chain rule, one sample per column, the batch adds up column by column):

* Output error: δ_L = ∂L/∂z_L = s · ∂ℓ/∂a_L ⊙ σ_L′(z_L), where s = 1 (sum) or 1/N (mean).
* Recursion: z_{k+1} depends on a_k only through W_{k+1}'s first n_k columns (the last
  column of a bias-node W multiplies the constant 1, which has no incoming weights), so
  δ_k = (W_{k+1}[:, :n_k]ᵀ δ_{k+1}) ⊙ σ_k′(z_k).
* Parameters: ∂L/∂W_k = δ_k ã_{k-1}ᵀ and ∂L/∂b_k = δ_k 1 (the sum over samples).
* Penalty: with λ > 0, L gains λ/2 Σ_k ‖W_k[:, :n_{k-1}]‖² (bias columns excluded), so
  ∂L/∂W_k gains λ W_k on those columns; with ``l2_biases`` it covers the biases too (the bias
  column, or + λ/2 Σ_k ‖b_k‖²), so ∂L/∂W_k gains λ W_k on every column, or ∂L/∂b_k gains λ b_k.
* SGD: W_k ← W_k − η ∂L/∂W_k, b_k ← b_k − η ∂L/∂b_k, with every gradient taken at the
  *old* parameters.

For the seed's network (L = 2, sigmoid, ½-squared error, sum) this gives
δ_o = (σ_o − ŷ) ⊙ σ_o(1 − σ_o), ∂L/∂W_o = δ_o ã_hᵀ and
∂L/∂W_h = ((W_o[:, :H]ᵀ δ_o) ⊙ σ_h(1 − σ_h)) ã_iᵀ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manual.activations import activation
from manual.losses import LOSSES, l2_penalty, reduce, reduction_scale
from manual.spec import Params, Spec, check_data, check_learning_rate, check_params, check_problem


@dataclass(frozen=True)
class LayerCache:
    """What layer k's backward step needs: its input ã_{k-1}, pre-activation z_k, output a_k."""

    inputs: np.ndarray
    z: np.ndarray
    a: np.ndarray


class Overflow(FloatingPointError, ValueError):
    """A result outgrew its dtype (inf, or NaN from inf − inf) although every input was finite:
    the message says where, and which inputs are too large."""


def finite(array: np.ndarray, step: str, place: str, culprit: str) -> np.ndarray:
    """``array`` if every entry is finite, else an ``Overflow``: "{step} overflows {dtype} at
    {place}: {culprit} too large"."""
    if not np.isfinite(array).all():
        raise Overflow(f"{step} overflows {np.asarray(array).dtype} at {place}: {culprit} too large")
    return array


def quiet() -> np.errstate:
    """Elementwise steps ignore the overflow flag (and the "invalid" one an overflow leads to):
    their results are checked with ``finite``, which names the step instead of a RuntimeWarning."""
    return np.errstate(over="ignore", invalid="ignore")


def matmul(a: np.ndarray, b: np.ndarray, step: str = "a matrix product",
           place: str = "its result", culprit: str = "its operands are") -> np.ndarray:
    """a @ b of finite operands. Some OpenBLAS kernels set a spurious "invalid" flag on finite
    operands (numpy issue 24067, OpenBLAS issue 1924), so the flags are ignored here and the
    product is checked instead: a NaN or inf that really appears (finite operands give one only
    by overflowing) is still an error, an ``Overflow`` naming the step."""
    with np.errstate(invalid="ignore", over="ignore"):
        product = a @ b
    return finite(product, step, place, culprit)


def to_columns(spec: Spec, array: np.ndarray) -> np.ndarray:
    """View data in the features × samples layout used internally (no copy; labels as they are)."""
    return array if spec.layout == "cols" or array.ndim == 1 else array.T


def with_bias_row(a: np.ndarray) -> np.ndarray:
    """ã = [a; 1ᵀ]: append the bias node's constant row of ones."""
    return np.vstack([a, np.ones((1, a.shape[1]), dtype=a.dtype)])


def forward(spec: Spec, params: Params, X_cols: np.ndarray) -> list[LayerCache]:
    """z_k = W_k ã_{k-1} (+ b_k), a_k = σ_k(z_k) for k = 1 … L; X_cols is (F, N)."""
    caches, a, large = [], X_cols, "X or the weights are"
    for k, name in enumerate(spec.activations, start=1):
        inputs = with_bias_row(a) if spec.bias == "node" else a
        z = matmul(params[f"W{k}"], inputs, "the forward pass", f"layer {k} (z{k})", large)
        with quiet():
            if spec.bias == "vector":
                z = finite(z + params[f"b{k}"][:, None], "the forward pass", f"layer {k} (z{k})",
                           "X or the parameters are")
            a = finite(activation(name).value(z), "the forward pass", f"layer {k} (a{k} = {name}(z{k}))",
                       large)
        caches.append(LayerCache(inputs, z, a))
    return caches


def backward(spec: Spec, params: Params, caches: list[LayerCache], Y_cols: np.ndarray) -> Params:
    """δ_L = s ∂ℓ/∂a_L ⊙ σ_L′; δ_k = (W_{k+1}[:, :n_k]ᵀ δ_{k+1}) ⊙ σ_k′; ∂W_k = δ_k ã_{k-1}ᵀ."""
    scale = reduction_scale(Y_cols.shape[-1], spec.reduction)
    step, large = "the backward pass", "X, Y or the weights are"
    with quiet():
        upstream = finite(scale * LOSSES[spec.loss].gradient(caches[-1].a, Y_cols), step,
                          f"the loss gradient (∂L/∂a{spec.depth})", large)  # ∂L/∂a_L
    grads: Params = {}
    for k in range(spec.depth, 0, -1):
        cache = caches[k - 1]
        with quiet():
            delta = finite(activation(spec.activations[k - 1]).vjp(cache.z, cache.a, upstream), step,
                           f"layer {k} (δ{k} = ∂L/∂z{k})", large)
        grads[f"W{k}"] = matmul(delta, cache.inputs.T, step, f"layer {k} (∂L/∂W{k})", large)
        if spec.l2:
            columns = spec.sizes[k - 1] + int(spec.l2_biases and spec.bias == "node")
            with quiet():
                grads[f"W{k}"][:, :columns] += spec.l2 * params[f"W{k}"][:, :columns]
            finite(grads[f"W{k}"], step, f"layer {k} (∂L/∂W{k} + λW{k})", "l2, X, Y or the weights are")
        if spec.bias == "vector":
            with quiet():
                grads[f"b{k}"] = finite(delta.sum(axis=1), step, f"layer {k} (∂L/∂b{k})", large)
                if spec.l2 and spec.l2_biases:
                    grads[f"b{k}"] = finite(grads[f"b{k}"] + spec.l2 * params[f"b{k}"], step,
                                            f"layer {k} (∂L/∂b{k} + λb{k})", "l2, X, Y or the biases are")
        if k > 1:
            upstream = matmul(params[f"W{k}"][:, : spec.sizes[k - 1]].T, delta, step,
                              f"layer {k - 1} (∂L/∂a{k - 1})", large)
    return {name: grads[name] for name in params}


def weights(spec: Spec, params: Params, k: int) -> np.ndarray:
    """W_k without its bias column: the block the L2 penalty acts on (unless ``l2_biases``)."""
    return params[f"W{k}"][:, : spec.sizes[k - 1]]


def penalised(spec: Spec, params: Params, k: int) -> list[np.ndarray]:
    """The blocks of layer k the L2 penalty acts on: its weights, and with ``l2_biases`` its
    bias too (all of a bias-node W_k, or W_k's weights and b_k)."""
    if not spec.l2_biases:
        return [weights(spec, params, k)]
    return [params[f"W{k}"]] if spec.bias == "node" else [params[f"W{k}"], params[f"b{k}"]]


def predict(spec: Spec, params: Params, X: np.ndarray) -> np.ndarray:
    """Network output a_L, in the spec's layout."""
    params = check_params(spec, params)
    X, _ = check_data(spec, X)
    return to_columns(spec, forward(spec, params, to_columns(spec, X))[-1].a)


def loss(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray) -> float:
    """L = reduce_n ℓ(a_L, Y)."""
    params, X, Y = check_problem(spec, params, X, Y)
    output = forward(spec, params, to_columns(spec, X))[-1].a
    with quiet():
        data_term = reduce(LOSSES[spec.loss].per_sample(output, to_columns(spec, Y)), spec.reduction)
        penalty = l2_penalty([block for k in range(1, spec.depth + 1)
                              for block in penalised(spec, params, k)], spec.l2)
    return finite(float(data_term) + penalty, "the loss", "L", "l2, X, Y or the weights are")


def gradients(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """∂L/∂θ for every parameter θ, keyed like ``params``, in ``spec.dtype``; an ``Overflow``
    (a ValueError) names the step where a value outgrows the dtype."""
    params, X, Y = check_problem(spec, params, X, Y)
    return _gradients(spec, params, X, Y)


def _gradients(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """``gradients`` of inputs already checked."""
    caches = forward(spec, params, to_columns(spec, X))
    return backward(spec, params, caches, to_columns(spec, Y))


def sgd_step(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, lr: float) -> Params:
    """θ ← θ − η ∂L/∂θ for every parameter, all gradients taken at the old θ (new arrays); the
    inputs are checked as by ``gradients``, and a step that overflows is an ``Overflow``."""
    return gradients_and_sgd_step(spec, params, X, Y, lr)[1]


def gradients_and_sgd_step(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray,
                           lr: float) -> tuple[Params, Params]:
    """(∂L/∂θ, θ − η ∂L/∂θ) from one forward and backward pass (``gradients``, ``sgd_step``)."""
    lr = check_learning_rate(lr)
    params, X, Y = check_problem(spec, params, X, Y)
    grads = _gradients(spec, params, X, Y)
    with quiet():
        new = {name: params[name] - params[name].dtype.type(lr) * grads[name] for name in grads}
    for name, value in new.items():
        finite(value, f"lr={lr!r}: the SGD step", f"params[{name!r}]", "lr or the gradient is")
    return grads, new
