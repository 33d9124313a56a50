"""``seed-literal``: the seed's core code, reproduced literally, with its full program's conventions.

The program keeps samples as columns and a bias node: X (n_samples, n_features) gets a column of
ones and is transposed to ``input_vector`` (F+1, N); the hidden output gets a row of ones
(H+1, N); ``weights_hidden_in`` is (H, F+1), ``weights_hidden_out`` is (C, H+1). Activation
derivatives are computed from each layer's *output*: sigmoid out(1 − out), tanh 1 − out²,
relu a step of out. Gradients are summed over the batch (no 1/N).

What the code does, in the derived rule's notation (e = σ_o − ŷ):

* output: W_o ← W_o − η (e ⊙ σ_o(1 − σ_o)) ã_hᵀ — this *is* the exact gradient step;
* hidden: W_h ← W_h − η ((W_o′ᵀ e) ⊙ σ_h′)[:-1] ã_iᵀ with W_o′ the *already updated* output
  weights and the output error ``e`` where the exact rule has δ_o = e ⊙ σ_o′.

The exact hidden step is W_h − η ((W_oᵀ δ_o) ⊙ σ_h′)[:-1] ã_iᵀ; the two differ by two named
substitutions: δ_o → e (a missing output-derivative factor) and W_o → W_o′ (stale ordering).
"""

from __future__ import annotations

import numpy as np

from manual.activations import activation
from manual.network import to_columns
from manual.spec import Params, Spec, check_learning_rate, check_problem

#: The program's loss: ½ squared error, summed over the batch.
LOSS = "half-sse"
#: errors ⊙ σ′ as the program computes it: the derivative from the layer's output, evaluated
#: left to right as the seed writes it (``errors * out * (1.0 - out)``), so results match bitwise.
TIMES_DERIVATIVE_FROM_OUTPUT = {
    "sigmoid": lambda errors, out: errors * out * (1.0 - out),
    "tanh": lambda errors, out: errors * (1.0 - out**2),
    "relu": lambda errors, out: errors * (out > 0).astype(out.dtype),
}


def seed_literal_train(
    weights_hidden_in: np.ndarray,
    weights_hidden_out: np.ndarray,
    X: np.ndarray,
    target_vec: np.ndarray,
    learning_rate: float,
    hidden_activ: str = "sigmoid",
    output_activ: str = "sigmoid",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One ``train()`` call of the seed's program on copies of the weights.

    X is (n_samples, n_features), ``target_vec`` is (C, n_samples). Returns the updated
    ``(weights_hidden_in, weights_hidden_out)`` and the two directions the code subtracts
    (scaled by the learning rate): ``x`` for the hidden layer and the output one.
    """
    self_weights_hidden_in = weights_hidden_in.copy()
    self_weights_hidden_out = weights_hidden_out.copy()
    hidden_function = activation(hidden_activ).value
    output_function = activation(output_activ).value
    ones = np.ones((X.shape[0], 1), dtype=X.dtype)
    input_vector = np.concatenate((X, ones), axis=1).T

    # --- the seed's core code, line by line ---
    output_vector1 = np.dot(self_weights_hidden_in, input_vector)
    output_vector_hidden = hidden_function(output_vector1)
    # (full program: the bias node's row of ones joins the hidden output)
    output_vector_hidden = np.concatenate(
        (output_vector_hidden, np.ones((1, output_vector_hidden.shape[1]), dtype=X.dtype))
    )
    output_vector2 = np.dot(self_weights_hidden_out, output_vector_hidden)
    output_vector_network = output_function(output_vector2)

    # update the output-layer weights
    output_errors = -target_vec + output_vector_network
    tmp = TIMES_DERIVATIVE_FROM_OUTPUT[output_activ](output_errors, output_vector_network)
    output_direction = np.dot(tmp, output_vector_hidden.T)
    tmp = learning_rate * output_direction
    self_weights_hidden_out -= tmp

    # update the hidden-layer weights
    hidden_errors = np.dot(self_weights_hidden_out.T, output_errors)
    tmp = TIMES_DERIVATIVE_FROM_OUTPUT[hidden_activ](hidden_errors, output_vector_hidden)
    x = np.dot(tmp, input_vector.T)[:-1, :]  # with bias: drop the constant hidden unit's row
    self_weights_hidden_in -= learning_rate * x
    return self_weights_hidden_in, self_weights_hidden_out, x, output_direction


def unsupported_reason(spec: Spec) -> str | None:
    """Why the seed's program cannot run this spec, or None when it can."""
    if spec.depth != 2:
        return "the seed's program has exactly one hidden layer"
    if spec.bias != "node":
        return "the seed's program uses a bias node"
    if spec.loss != LOSS or spec.reduction != "sum" or spec.l2:
        return "the seed's program uses ½ squared error summed over the batch, no penalty"
    unknown = [name for name in spec.activations if name not in TIMES_DERIVATIVE_FROM_OUTPUT]
    if unknown:
        return f"the seed's program has sigmoid, tanh and relu only, not {unknown}"
    return None


def _run(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, lr: float):
    reason = unsupported_reason(spec)
    if reason:
        raise ValueError(f"seed-literal cannot run this spec: {reason}")
    params, X, Y = check_problem(spec, params, X, Y)
    lr = check_learning_rate(lr)
    return seed_literal_train(
        params["W1"], params["W2"], to_columns(spec, X).T, to_columns(spec, Y),
        lr, *spec.activations,
    )


def seed_directions_and_step(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray,
                             lr: float) -> tuple[Params, Params]:
    """(``seed_directions``, ``seed_step``) from one ``train()`` call."""
    hidden_in, hidden_out, hidden, output = _run(spec, params, X, Y, lr)
    return {"W1": hidden, "W2": output}, {"W1": hidden_in, "W2": hidden_out}


def seed_directions(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, lr: float) -> Params:
    """The directions the seed subtracts, θ ← θ − η·D; D plays the role of ∂L/∂θ."""
    return seed_directions_and_step(spec, params, X, Y, lr)[0]


def seed_step(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, lr: float) -> Params:
    """The seed's weights after one ``train()`` call."""
    return seed_directions_and_step(spec, params, X, Y, lr)[1]
