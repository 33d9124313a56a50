"""Witness 1: PyTorch autograd in float64; the SGD step is ``torch.optim.SGD``.

Built from torch's own functions (``F.linear``, ``F.pad``, ``F.leaky_relu``, ``F.cross_entropy``,
…); it reads only the model description from ``manual.spec``. Data are samples × features.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from manual.spec import LOSS_TARGETS, Params, Spec, parse_activation

#: name → factory(parameter) → function of (N, units) pre-activations.
ACTIVATIONS = {
    "sigmoid": lambda _: torch.sigmoid,
    "tanh": lambda _: torch.tanh,
    "relu": lambda _: F.relu,
    "leaky_relu": lambda slope: lambda z: F.leaky_relu(z, negative_slope=slope),
    # F.softplus switches to z above its threshold (20); logaddexp(z, 0) is exact everywhere
    "softplus": lambda _: lambda z: torch.logaddexp(z, torch.zeros_like(z)),
    "identity": lambda _: lambda z: z,
    "softmax": lambda _: lambda z: torch.softmax(z, dim=1),
}

#: name → per-sample loss of (N, C) predictions and (N, C) targets or (N,) labels.
LOSSES = {
    "half-sse": lambda p, y: 0.5 * F.mse_loss(p, y, reduction="none").sum(dim=1),
    "mse": lambda p, y: F.mse_loss(p, y, reduction="none").mean(dim=1),
    "bce": lambda p, y: F.binary_cross_entropy(p, y, reduction="none").sum(dim=1),
    "bce-logits": lambda z, y: F.binary_cross_entropy_with_logits(z, y, reduction="none").sum(dim=1),
    "softmax-ce": lambda z, y: F.cross_entropy(z, y, reduction="none"),
    "softmax-ce-labels": lambda z, y: F.cross_entropy(z, y, reduction="none"),
}


def activation(name: str):
    base, parameter = parse_activation(name)
    return ACTIVATIONS[base](parameter)


def _rows(spec: Spec, array: np.ndarray) -> torch.Tensor:
    if LOSS_TARGETS[spec.loss] == "labels" and np.issubdtype(np.asarray(array).dtype, np.integer):
        return torch.tensor(np.asarray(array, dtype=np.int64))
    array = array if spec.layout == "rows" else array.T
    return torch.tensor(np.asarray(array, dtype=np.float64))


def _loss(spec: Spec, tensors: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor):
    a = x
    for k, name in enumerate(spec.activations, start=1):
        if spec.bias == "node":
            a = F.pad(a, (0, 1), value=1.0)
        a = activation(name)(F.linear(a, tensors[f"W{k}"], tensors.get(f"b{k}")))
    per_sample = LOSSES[spec.loss](a, y)
    total = per_sample.mean() if spec.reduction == "mean" else per_sample.sum()
    if spec.l2:
        inputs = spec.sizes[:-1]
        total = total + 0.5 * spec.l2 * sum(
            tensors[f"W{k}"][:, : inputs[k - 1]].square().sum() for k in range(1, spec.depth + 1))
    return total


def _leaves(params: Params) -> dict[str, torch.Tensor]:
    return {name: torch.tensor(np.asarray(value, dtype=np.float64), requires_grad=True)
            for name, value in params.items()}


def loss(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray) -> float:
    """L in float64."""
    with torch.no_grad():
        return float(_loss(spec, _leaves(params), _rows(spec, X), _rows(spec, Y)))


def gradients(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray) -> Params:
    """∂L/∂θ by reverse-mode autograd, float64."""
    leaves = _leaves(params)
    total = _loss(spec, leaves, _rows(spec, X), _rows(spec, Y))
    grads = torch.autograd.grad(total, list(leaves.values()))
    return {name: g.numpy() for name, g in zip(leaves, grads, strict=True)}


def sgd_step(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, lr: float) -> Params:
    """Parameters after one ``torch.optim.SGD`` step, float64."""
    return gradients_and_sgd_step(spec, params, X, Y, lr)[1]


def gradients_and_sgd_step(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray,
                           lr: float) -> tuple[Params, Params]:
    """∂L/∂θ and the parameters after one ``torch.optim.SGD`` step, from one backward pass."""
    leaves = _leaves(params)
    optimizer = torch.optim.SGD(list(leaves.values()), lr=lr)
    optimizer.zero_grad()
    _loss(spec, leaves, _rows(spec, X), _rows(spec, Y)).backward()
    grads = {name: t.grad.clone().numpy() for name, t in leaves.items()}
    optimizer.step()
    return grads, {name: t.detach().numpy() for name, t in leaves.items()}
