r"""The derived rule for a network of layers (``manual.stack``): forward, backward, SGD step.

Forward runs each layer's pair in order, ``out, cache = forward(x, params, layer)``; a residual
block computes x + body(x). The loss ℓ(out, y) is reduced over the batch (``manual.losses``).
Backward starts from dout = ∂L/∂out = s ∂ℓ/∂out (s = 1 or 1/N) and runs the layers' backward
pairs in reverse, ``dx, grads = backward(dout, cache)``; a residual block sends dout both
through its body and straight on, and adds the two (``manual.layers.simple.add_backward``).
The gradient of the input, ``x``, comes out beside the parameters'. The SGD step is
θ ← θ − η ∂L/∂θ with every gradient at the old θ; batch norm's running statistics move by their
own update (``manual.layers.normalisation.running_statistics``).
"""

from __future__ import annotations

from collections.abc import Callable

from manual.layers import attention, conv, normalisation, pooling, recurrent, sequence, simple
from manual.losses import LOSSES, reduce, reduction_scale
from manual.network import quiet
from manual.spec import Array, Params
from manual.stack import ACTIVATION, PADDING, Layer, Stack
from manual.stack_checks import check_stack_problem

#: kind → (forward, backward): the pairs of ``manual.layers``.
PAIRS: dict[str, tuple[Callable, Callable]] = {
    "conv2d": (conv.conv2d_forward, conv.conv2d_backward),
    "max_pool2d": (pooling.max_pool2d_forward, pooling.max_pool2d_backward),
    "avg_pool2d": (pooling.avg_pool2d_forward, pooling.avg_pool2d_backward),
    "batch_norm": (normalisation.batch_norm_forward, normalisation.batch_norm_backward),
    "layer_norm": (normalisation.layer_norm_forward, normalisation.layer_norm_backward),
    "dropout": (simple.dropout_forward, simple.dropout_backward),
    "flatten": (simple.flatten_forward, simple.flatten_backward),
    "dense": (simple.dense_forward, simple.dense_backward),
    "embedding": (sequence.embedding_forward, sequence.embedding_backward),
    "rnn": (recurrent.recurrent_forward, recurrent.recurrent_backward),
    "lstm": (recurrent.recurrent_forward, recurrent.recurrent_backward),
    "gru": (recurrent.recurrent_forward, recurrent.recurrent_backward),
    "attention": (attention.attention_forward, attention.attention_backward),
    ACTIVATION: (simple.activation_forward, simple.activation_backward),
}


def own(params: Params, layer: Layer) -> Params:
    """A layer's parameters by short name: ``{"W": params["conv1.W"], …}``."""
    return {name: params[f"{layer}.{name}"] for name in layer.parameters}


def forward(layers: tuple[Layer, ...], params: Params, x: Array,
            masks: dict[str, Array], pairs: dict = PAIRS) -> tuple[Array, list]:
    """The output and, per layer, its cache (a residual block's: the body's caches)."""
    caches = []
    for layer in layers:
        if layer.kind == "res":
            inner, body = forward(layer.body, params, x, masks, pairs)
            x, cache = simple.add_forward(x, inner)[0], body
        elif layer.kind == "dropout":
            x, cache = pairs[layer.kind][0](x, {}, layer, masks[layer.name])
        else:
            x, cache = pairs[layer.kind][0](x, own(params, layer), layer)
        caches.append(cache)
    return x, caches


def backward(layers: tuple[Layer, ...], caches: list, dout: Array,
             pairs: dict = PAIRS) -> tuple[Array, Params]:
    """∂L/∂x (None for tokens) and every parameter's gradient, full names, from
    dout = ∂L/∂output."""
    grads: Params = {}
    for layer, cache in zip(reversed(layers), reversed(caches), strict=True):
        if layer.kind == "res":
            straight, into_body = simple.add_backward(dout, None)
            through, inner = backward(layer.body, cache, into_body, pairs)
            dout = straight + through
            grads |= inner
        else:
            dout, own_grads = pairs[layer.kind][1](dout, cache)
            grads |= {f"{layer}.{name}": value for name, value in own_grads.items()}
    return dout, grads


def loss_value(stack: Stack, out: Array, y: Array, masks: dict[str, Array] | None = None) -> float:
    """L = reduce_n ℓ(out_n, y_n); at every step of (N, T, C) outputs, padded steps left out
    (``manual.layers.sequence.masked_loss_value``)."""
    record = LOSSES[stack.loss]
    with quiet():
        if stack.per_step:
            return sequence.masked_loss_value(record, out, y, (masks or {})[PADDING], stack.reduction)
        return float(reduce(record.per_sample(out.T, y if y.ndim == 1 else y.T), stack.reduction))


def loss_gradient(stack: Stack, out: Array, y: Array, masks: dict[str, Array] | None = None
                  ) -> tuple[float, Array]:
    """(``loss_value``, ∂L/∂out = s ∂ℓ/∂out) with s = 1 or 1/N; at every step, padded steps
    left out (``manual.layers.sequence.masked_loss``)."""
    record, cols = LOSSES[stack.loss], y if y.ndim == 1 else y.T
    with quiet():
        if stack.per_step:
            value, dout = sequence.masked_loss(record, out, y, (masks or {})[PADDING], stack.reduction)
        else:
            value = loss_value(stack, out, y, masks)
            dout = reduction_scale(out.shape[0], stack.reduction) * record.gradient(out.T, cols).T
    return value, dout.astype(out.dtype)


def loss_and_gradients(stack: Stack, params: Params, x: Array, y: Array,
                       masks: dict[str, Array] | None = None, pairs: dict = PAIRS) -> tuple[float, Params]:
    """(L, ∂L/∂θ for every parameter and ∂L/∂x under the key ``x``), inputs checked first."""
    params, x, y, masks = check_stack_problem(stack, params, x, y, masks)
    return _loss_and_gradients(stack, params, x, y, masks, pairs)[:2]


def _loss_and_gradients(stack, params, x, y, masks, pairs=PAIRS):
    with quiet():
        out, caches = forward(stack.layers, params, x, masks, pairs)
    value, dout = loss_gradient(stack, out, y, masks)
    with quiet():
        dx, grads = backward(stack.layers, caches, dout, pairs)
    return value, {name: grads[name] for name in params} | ({} if stack.tokens else {"x": dx}), caches


def loss(stack: Stack, params: Params, x: Array, y: Array, masks: dict[str, Array] | None = None,
         pairs: dict = PAIRS) -> float:
    """L of the forward pass alone (what finite differences of the rule's own forward take)."""
    params, x, y, masks = check_stack_problem(stack, params, x, y, masks)
    with quiet():
        out, _ = forward(stack.layers, params, x, masks, pairs)
    return loss_value(stack, out, y, masks)


def gradients(stack: Stack, params: Params, x: Array, y: Array,
              masks: dict[str, Array] | None = None) -> Params:
    """∂L/∂θ and ∂L/∂x (key ``x``) in the stack's dtype."""
    return loss_and_gradients(stack, params, x, y, masks)[1]


def running_updates(stack: Stack, caches: list, buffers: Params, layers=None) -> Params:
    """Every batch norm's running statistics after this batch (new arrays)."""
    updated: Params = {}
    for layer, cache in zip(stack.layers if layers is None else layers, caches, strict=True):
        if layer.kind == "res":
            updated |= running_updates(stack, cache, buffers, layer.body)
        elif layer.kind == "batch_norm":
            own_buffers = {name: buffers[f"{layer}.{name}"] for name in ("running_mean", "running_var")}
            new = normalisation.running_statistics(cache, own_buffers, layer)
            updated |= {f"{layer}.{name}": value for name, value in new.items()}
    return updated


def sgd_step(stack: Stack, params: Params, buffers: Params, x: Array, y: Array, lr: float,
             masks: dict[str, Array] | None = None, pairs: dict = PAIRS) -> tuple[Params, Params, Params]:
    """(gradients, θ − η ∂L/∂θ, updated running statistics), all new arrays."""
    params, x, y, masks = check_stack_problem(stack, params, x, y, masks, buffers)
    _, grads, caches = _loss_and_gradients(stack, params, x, y, masks, pairs)
    with quiet():
        new = {name: value - value.dtype.type(lr) * grads[name] for name, value in params.items()}
    return grads, new, running_updates(stack, caches, buffers)
