r"""Dense, activation, dropout, flatten and add: the layers with one-line derivations.

* ``dense``: x (N, F_in), W (F_out, F_in), b (F_out,): out = x Wᵀ + b;
  ∂L/∂x = dout W, ∂L/∂W = doutᵀ x, ∂L/∂b = Σ_n dout. On sequences x (N, T, F_in) it acts at
  every step, and the sums run over samples and steps.
* activation σ (elementwise, any shape): out = σ(x); ∂L/∂x = dout ⊙ σ′(x)
  (``manual.activations``: each value beside its derivative).
* ``dropout`` with keep-probability 1 − p and an explicit 0/1 mask of x's shape (inverted
  scaling, so the expected output is x): out = x ⊙ mask/(1 − p); ∂L/∂x = dout ⊙ mask/(1 − p).
* ``flatten``: (N, C, H, W) → (N, C·H·W) in C order; ∂L/∂x is dout reshaped back.
* ``add`` of two branches of one shape: out = a + b; ∂L/∂a = ∂L/∂b = dout.
"""

from __future__ import annotations

from manual.activations import activation
from manual.layer_kinds import Layer
from manual.spec import Array


def dense_forward(x: Array, params: dict[str, Array], layer: Layer) -> tuple[Array, tuple]:
    """out = x Wᵀ (+ b)."""
    out = x @ params["W"].T
    if "b" in params:
        out = out + params["b"]
    return out, (x, params["W"], "b" in params)


def dense_backward(dout: Array, cache: tuple) -> tuple[Array, dict[str, Array]]:
    """∂L/∂x = dout W, ∂L/∂W = doutᵀ x, ∂L/∂b = Σ_n dout (sums over steps too)."""
    x, W, has_bias = cache
    rows, inputs = (dout, x) if x.ndim == 2 else (dout.reshape(-1, W.shape[0]), x.reshape(-1, W.shape[1]))
    return dout @ W, {"W": rows.T @ inputs} | ({"b": rows.sum(axis=0)} if has_bias else {})


def activation_forward(x: Array, params: dict[str, Array], layer: Layer) -> tuple[Array, tuple]:
    """out = σ(x), elementwise."""
    sigma = activation(layer.activation)
    out = sigma.value(x)
    return out, (sigma, x, out)


def activation_backward(dout: Array, cache: tuple) -> tuple[Array, dict[str, Array]]:
    """∂L/∂x = dout ⊙ σ′(x)."""
    sigma, x, out = cache
    return sigma.vjp(x, out, dout), {}


def dropout_forward(x: Array, params: dict[str, Array], layer: Layer,
                    mask: Array | None = None) -> tuple[Array, tuple]:
    """out = x ⊙ mask/(1 − p)."""
    scale = (mask / x.dtype.type(1 - layer.p)).astype(x.dtype)
    return x * scale, scale


def dropout_backward(dout: Array, cache: Array) -> tuple[Array, dict[str, Array]]:
    """∂L/∂x = dout ⊙ mask/(1 − p)."""
    return dout * cache, {}


def flatten_forward(x: Array, params: dict[str, Array], layer: Layer) -> tuple[Array, tuple]:
    """(N, …) → (N, size of one sample)."""
    return x.reshape(x.shape[0], -1), x.shape


def flatten_backward(dout: Array, cache: tuple) -> tuple[Array, dict[str, Array]]:
    """dout reshaped to the input's shape."""
    return dout.reshape(cache), {}


def add_forward(a: Array, b: Array) -> tuple[Array, None]:
    """out = a + b."""
    return a + b, None


def add_backward(dout: Array, cache: None) -> tuple[Array, Array]:
    """(∂L/∂a, ∂L/∂b) = (dout, dout)."""
    return dout, dout
