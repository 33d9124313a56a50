"""Witness 1 for networks of layers (``manual.stack``): PyTorch autograd through
``torch.nn.functional`` — ``conv2d``, ``max_pool2d``, ``avg_pool2d``, ``batch_norm`` (training
mode, updating the running statistics in place), ``layer_norm``, ``linear``, ``embedding`` —
the sequence layers of ``reference.torch_sequence`` (``torch.nn.RNN/LSTM/GRU`` with our
weights, ``F.multi_head_attention_forward``, ``F.scaled_dot_product_attention``), and the
activations and losses of ``reference.torch_ref``; at every step, the loss of the real steps
alone, picked by index. Dropout with a given mask is x·mask/(1 − p) (``F.dropout`` draws its
own). The SGD step is torch.optim's functional ``sgd``. Reads only the model description from
``manual.stack``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.sgd import sgd

from manual.spec import ACTIVATION, PADDING, Layer, Params, Stack, stride, walk
from reference.torch_copies import through_layers
from reference.torch_ref import LOSSES, activation
from reference.torch_sequence import RECURRENT, attention, inner_preactivations, recurrent

__all__ = ["inner_preactivations"]  # the allowances read it through this module

TITLE = "torch"
Tensors = dict[str, torch.Tensor]
#: kind → a user's torch forward ``f(x, params) → out`` (``bpcheck.user.layer`` registers them)
USER_LAYERS: dict[str, Callable] = {}


def layer_output(layer: Layer, x: torch.Tensor, t: Tensors, masks: Tensors) -> torch.Tensor:
    """One layer's output; ``t`` holds every parameter and running statistic by full name."""
    own = {name.partition(".")[2]: value for name, value in t.items() if name.partition(".")[0] == layer.name}
    if layer.kind in USER_LAYERS:
        return USER_LAYERS[layer.kind](x, own)
    if layer.kind == "conv2d":
        return F.conv2d(x, own["W"], own.get("b"), stride=stride(layer), padding=layer.padding,
                        dilation=layer.dilation)
    if layer.kind == "max_pool2d":
        return F.max_pool2d(x, layer.kernel, stride(layer))
    if layer.kind == "avg_pool2d":
        return F.avg_pool2d(x, layer.kernel, stride(layer))
    if layer.kind == "batch_norm":
        return F.batch_norm(x, own.get("running_mean"), own.get("running_var"), own["gamma"],
                            own["beta"], training=True, momentum=layer.momentum, eps=layer.eps)
    if layer.kind == "layer_norm":
        return F.layer_norm(x, tuple(x.shape[1:]), own["gamma"], own["beta"], eps=layer.eps)
    if layer.kind == "dropout":
        return x * masks[layer.name] / (1.0 - layer.p)
    if layer.kind == "flatten":
        return torch.flatten(x, 1)
    if layer.kind == "dense":
        return F.linear(x, own["W"], own.get("b"))
    if layer.kind == "embedding":
        return F.embedding(x, own["W"])
    if layer.kind in RECURRENT:
        return recurrent(layer, x, own)
    if layer.kind == "attention":
        return attention(layer, x, own)
    if layer.kind == ACTIVATION:
        return activation(layer.activation)(x)
    raise ValueError(f"{layer.name}: the torch witness has no layer kind {layer.kind!r}")


def _output(layers: tuple[Layer, ...], x: torch.Tensor, t: Tensors, masks: Tensors,
            wobble: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """The network's output; ``wobble``, if given, perturbs every layer's output (and, by a
    hook, the gradient flowing back into it)."""
    for layer in layers:
        if layer.kind == "res":
            x = x + _output(layer.body, x, t, masks, wobble)
        else:
            x = layer_output(layer, x, t, masks)
        if wobble is not None:
            x = wobble(x)
    return x


def _loss(stack: Stack, out: torch.Tensor, y: torch.Tensor, masks: Tensors) -> torch.Tensor:
    """L of one output."""
    return _losses(stack, out[None], y, masks)[0]


def _losses(stack: Stack, outs: torch.Tensor, y: torch.Tensor, masks: Tensors) -> torch.Tensor:
    """L of each of K outputs (leading axis), in one call of the loss on K·N samples (or K·R
    real steps), the targets repeated: L_k = mean or sum over n of loss(out_kn, y_n)."""
    copies, classes = len(outs), outs.shape[-1]
    if stack.per_step:  # the real steps alone, picked by index; mean over them
        real = torch.nonzero(masks[PADDING].reshape(-1)).reshape(-1)
        outs = outs.reshape(copies, -1, classes).index_select(1, real)
        y = y.reshape(-1, *y.shape[2:]).index_select(0, real)
    per_sample = LOSSES[stack.loss](outs.reshape(-1, classes), y.repeat(copies, *[1] * (y.dim() - 1)))
    per_sample = per_sample.reshape(copies, -1)
    return per_sample.mean(dim=1) if stack.reduction == "mean" else per_sample.sum(dim=1)


def _data(stack: Stack, x: np.ndarray, dtype=np.float64) -> torch.Tensor:
    """x as a tensor: integer tokens as int64, else in ``dtype``."""
    return torch.tensor(np.asarray(x, np.int64 if stack.tokens else dtype))


def _inputs(stack: Stack, x: np.ndarray, y: np.ndarray, masks: Params | None, dtype=np.float64):
    y = torch.tensor(np.asarray(y, np.int64 if stack.targets == "labels" else dtype))
    masks = dict(masks or {})
    if stack.per_step and PADDING not in masks:
        masks[PADDING] = np.ones((len(x), stack.shapes[-1][0]))
    return (_data(stack, x, dtype), y,
            {name: torch.tensor(np.asarray(mask, dtype)) for name, mask in masks.items()})


def differentiable(stack: Stack, x: np.ndarray) -> Params:
    """``{"x": x}``, or nothing for integer tokens (no gradient)."""
    return {} if stack.tokens else {"x": x}


def _leaves(values: Params, dtype=np.float64) -> Tensors:
    return {name: torch.tensor(np.asarray(value, dtype), requires_grad=True)
            for name, value in values.items()}


def _numpy(gradient: torch.Tensor | None, leaf: torch.Tensor) -> np.ndarray:
    """A gradient as an array; zeros where the forward did not use the leaf at all."""
    return np.zeros(tuple(leaf.shape)) if gradient is None else gradient.detach().clone().numpy()


def loss(stack: Stack, params: Params, x: np.ndarray, y: np.ndarray, masks: Params | None = None) -> float:
    """L in float64."""
    x, y, masks = _inputs(stack, x, y, masks)
    with torch.no_grad():
        t = {name: torch.tensor(np.asarray(v, np.float64)) for name, v in params.items()}
        return float(_loss(stack, _output(stack.layers, x, t, masks), y, masks))


def gradients(stack: Stack, params: Params, x: np.ndarray, y: np.ndarray, masks: Params | None = None,
              dtype: type = np.float64) -> Params:
    """∂L/∂θ and ∂L/∂x (key ``x``) by reverse-mode autograd, computed in ``dtype``."""
    leaves = _leaves(params | differentiable(stack, x), dtype)
    data, y, masks = _inputs(stack, x, y, masks, dtype)
    total = _loss(stack, _output(stack.layers, leaves.get("x", data), leaves, masks), y, masks)
    grads = torch.autograd.grad(total, list(leaves.values()), allow_unused=True)
    return {name: _numpy(g, leaves[name]).astype(np.float64) for name, g in zip(leaves, grads, strict=True)}


def perturbed_gradients(stack: Stack, params: Params, x: np.ndarray, y: np.ndarray,
                        masks: Params | None, rho: float, runs: int, seed: int = 0,
                        buffers: Params | None = None) -> list[Params]:
    """∂L/∂θ and ∂L/∂x in float64, ``runs`` times, with every parameter, input, float target and
    layer output, and in the backward pass the gradient flowing into every layer output,
    multiplied by 1 ± ρ (independent random signs per entry): the backward-error model of
    rounding each stored value (``bpcheck.core.tolerances``). With ``buffers``, each run also holds
    the running statistics ``F.batch_norm`` leaves after it."""
    rng = np.random.default_rng(seed)

    def shake(t: torch.Tensor) -> torch.Tensor:
        return t * torch.from_numpy(1.0 + rho * (rng.integers(0, 2, size=tuple(t.shape)) * 2.0 - 1.0))

    def wobble(t: torch.Tensor) -> torch.Tensor:
        t = shake(t)
        if t.requires_grad:
            factor = shake(torch.ones_like(t))
            t.register_hook(factor.mul)
        return t

    results = []
    for _ in range(runs):
        leaves = {name: shake(torch.tensor(np.asarray(v, np.float64))).requires_grad_()
                  for name, v in (params | differentiable(stack, x)).items()}
        data, target, tensors_masks = _inputs(stack, x, y, masks)
        if target.is_floating_point():
            target = shake(target)
        running = {name: torch.tensor(np.asarray(v, np.float64)) for name, v in (buffers or {}).items()}
        out = _output(stack.layers, leaves.get("x", data), leaves | running, tensors_masks, wobble)
        grads = torch.autograd.grad(_loss(stack, out, target, tensors_masks), list(leaves.values()),
                                    allow_unused=True)
        results.append({name: _numpy(g, leaves[name]) for name, g in zip(leaves, grads, strict=True)}
                       | {name: t.numpy() for name, t in running.items()})
    return results


def gradients_and_sgd_step(stack: Stack, params: Params, buffers: Params, x: np.ndarray, y: np.ndarray,
                           lr: float, masks: Params | None = None) -> tuple[Params, Params, Params]:
    """(∂L/∂θ and ∂L/∂x, θ after torch.optim's functional SGD step, the running statistics after
    ``F.batch_norm``'s in-place update), float64."""
    leaves = _leaves(params | differentiable(stack, x))
    running = {name: torch.tensor(np.asarray(v, np.float64)) for name, v in buffers.items()}
    data, y, masks = _inputs(stack, x, y, masks)
    _loss(stack, _output(stack.layers, leaves.get("x", data), leaves | running, masks), y, masks).backward()
    grads = {name: _numpy(t.grad, t) for name, t in leaves.items()}
    tensors = [leaves[name] for name in params]
    for t in tensors:  # a parameter the forward does not use (a user's layer that detaches it)
        t.grad = torch.zeros_like(t) if t.grad is None else t.grad
    with torch.no_grad():
        sgd(tensors, [t.grad for t in tensors], [None] * len(tensors), weight_decay=0.0, momentum=0.0,
            lr=lr, dampening=0.0, nesterov=False, maximize=False)
    return (grads, {name: leaves[name].detach().numpy() for name in params},
            {name: t.numpy() for name, t in running.items()})


def one_at_a_time(stack: Stack) -> bool:
    """Whether ``losses`` runs its copies layer by layer, not by one vmap of the whole forward:
    recurrent layers, whose fused kernels have no batching rule, and attention, whose kernel
    vmaps copy by copy (finite differences then take one direction per array, not DIRECTIONS)."""
    return any(layer.kind in (*RECURRENT, "attention") for layer in walk(stack.layers))


def losses(stack: Stack, values: Params, y: np.ndarray, masks: Params | None = None,
           x: np.ndarray | None = None) -> np.ndarray:
    """L of every copy, float64: ``values`` holds every parameter and ``x`` (for tokens, given
    apart as ``x``, the same for every copy) with a leading axis of copies
    (``torch.func.vmap`` of the forward pass over it; layer by layer through recurrent layers
    and attention, each layer run once per distinct input and own parameters: ``_layer_by_layer``)."""
    data, target, tensors_masks = _inputs(stack, values["x"][0] if x is None else x, y, masks)
    tensors = {name: torch.from_numpy(np.ascontiguousarray(v, np.float64)) for name, v in values.items()}

    def output(t: Tensors) -> torch.Tensor:
        return _output(stack.layers, t.get("x", data), t, tensors_masks)

    with torch.no_grad():
        if one_at_a_time(stack):
            outputs = _layer_by_layer(stack, tensors, data, tensors_masks)
        else:  # the loss outside vmap: under it, F.cross_entropy runs its Python decomposition,
            # whose torch._check imports sympy (half a second of every `bpcheck --network`)
            outputs = torch.func.vmap(output)(tensors)
        return _losses(stack, outputs, target, tensors_masks).numpy()


def _layer_by_layer(stack: Stack, tensors: Tensors, data: torch.Tensor, masks: Tensors) -> torch.Tensor:
    """Every copy's output (``tensors`` hold the copies on a leading axis), layer by layer
    (``reference.torch_copies``): each layer once per distinct input and own parameters, by vmap
    but for recurrent layers (copies that share their parameters as one batch) and a user's."""
    def vmaps(layer: Layer) -> bool:
        return all(inner.kind not in (*RECURRENT, *USER_LAYERS) for inner in walk((layer,)))

    return through_layers(stack.layers, tensors, data, lambda layer, x, t: _output((layer,), x, t, masks),
                          vmaps, lambda layer: layer.kind in RECURRENT)


def layer_inputs(stack: Stack, params: Params, x: np.ndarray, masks: Params | None = None
                 ) -> tuple[list[tuple[Layer, np.ndarray]], np.ndarray]:
    """Every layer's input in the float64 forward pass, residual bodies included, and the
    network's output."""
    _, _, tensors_masks = _inputs(stack, x, np.zeros(len(x), np.int64), masks)
    t = {name: torch.tensor(np.asarray(v, np.float64)) for name, v in params.items()}
    found: list[tuple[Layer, np.ndarray]] = []

    def visit(layers, a: torch.Tensor) -> torch.Tensor:
        for layer in layers:
            found.append((layer, a.numpy()))
            a = a + visit(layer.body, a) if layer.kind == "res" else layer_output(layer, a, t, tensors_masks)
        return a

    with torch.no_grad():
        out = visit(stack.layers, _data(stack, x))
    return found, out.numpy()


def running_after(stack: Stack, params: Params, buffers: Params, x: np.ndarray, masks: Params | None,
                  dtype: type = np.float64) -> Params:
    """The running statistics ``F.batch_norm`` leaves after one forward pass, computed in
    ``dtype`` (returned as float64)."""
    _, _, tensors_masks = _inputs(stack, x, np.zeros(len(x), np.int64), masks, dtype)
    t = {name: torch.tensor(np.asarray(v, dtype)) for name, v in (params | buffers).items()}
    with torch.no_grad():
        _output(stack.layers, _data(stack, x, dtype), t, tensors_masks)
    return {name: t[name].numpy().astype(np.float64) for name in buffers}
