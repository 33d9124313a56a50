"""Witness 1: PyTorch autograd in float64; the SGD step is ``torch.optim.SGD``.

Built from torch's own functions (``F.linear``, ``F.pad``, ``torch.sigmoid``, ``F.mse_loss``);
it reads only the model description from ``manual.spec``. Data are laid out samples × features.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from manual.spec import Params, Spec

ACTIVATIONS = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": F.relu,
}

#: Per-sample loss of (N, C) predictions and targets.
LOSSES = {
    "half-sse": lambda p, y: 0.5 * F.mse_loss(p, y, reduction="none").sum(dim=1),
}


def _rows(spec: Spec, array: np.ndarray) -> torch.Tensor:
    array = array if spec.layout == "rows" else array.T
    return torch.tensor(np.asarray(array, dtype=np.float64))


def _loss(spec: Spec, tensors: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor):
    a = x
    for k, name in enumerate(spec.activations, start=1):
        if spec.bias == "node":
            a = F.pad(a, (0, 1), value=1.0)
        a = ACTIVATIONS[name](F.linear(a, tensors[f"W{k}"], tensors.get(f"b{k}")))
    per_sample = LOSSES[spec.loss](a, y)
    return per_sample.mean() if spec.reduction == "mean" else per_sample.sum()


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
    leaves = _leaves(params)
    optimizer = torch.optim.SGD(list(leaves.values()), lr=lr)
    optimizer.zero_grad()
    _loss(spec, leaves, _rows(spec, X), _rows(spec, Y)).backward()
    optimizer.step()
    return {name: t.detach().numpy() for name, t in leaves.items()}
