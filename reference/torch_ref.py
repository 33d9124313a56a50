"""Witness 1: PyTorch autograd in float64; the SGD step is torch.optim's functional ``sgd``.

``torch.optim.sgd.sgd`` is the computation ``torch.optim.SGD.step`` runs, without the optimizer
object around it, whose first step loads ``torch._dynamo`` (a second, in every short command).

Built from torch's own functions (``F.linear``, ``F.pad``, ``F.leaky_relu``, ``F.cross_entropy``,
…); it reads only the model description from ``manual.spec``. Data are samples × features.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.sgd import sgd

from manual.spec import ACTIVATIONS as RECORDS
from manual.spec import Params, Spec, parse_activation, takes_probabilities, target_kind

TITLE = "torch"  # as reports name this witness

#: name → factory(parameter) → function of (…, N, units) pre-activations.
ACTIVATIONS = {
    "sigmoid": lambda _: torch.sigmoid,
    "tanh": lambda _: torch.tanh,
    "relu": lambda _: F.relu,
    "leaky_relu": lambda slope: lambda z: F.leaky_relu(z, negative_slope=slope),
    # F.softplus switches to z above its threshold (20); logaddexp(z, 0) is exact everywhere
    "softplus": lambda _: lambda z: torch.logaddexp(z, torch.zeros_like(z)),
    "identity": lambda _: lambda z: z,
    "softmax": lambda _: lambda z: torch.softmax(z, dim=-1),
}

#: name → per-sample loss of (N, C) predictions and (N, C) targets or (N,) labels.
LOSSES = {
    "half-sse": lambda p, y: 0.5 * F.mse_loss(p, y, reduction="none").sum(dim=1),
    "mse": lambda p, y: F.mse_loss(p, y, reduction="none").mean(dim=1),
    "bce": lambda p, y: -(y * _clamped_log(p) + (1 - y) * _clamped_log(1 - p)).sum(dim=1),
    "bce-logits": lambda z, y: F.binary_cross_entropy_with_logits(z, y, reduction="none").sum(dim=1),
    "softmax-ce": lambda z, y: F.cross_entropy(z, y, reduction="none"),
    "softmax-ce-labels": lambda z, y: F.cross_entropy(z, y, reduction="none"),
}


def _clamped_log(q: torch.Tensor) -> torch.Tensor:
    """max(log q, −100), BCE's convention, from ``torch.log`` and ``clamp`` so that autograd
    gives its exact derivative (``F.binary_cross_entropy``'s backward floors p(1 − p) at 1e−12
    instead, which is not the derivative of its own value); q = 0 gives −100 and gradient 0."""
    positive = q > 0
    return torch.where(positive, torch.log(torch.where(positive, q, 1.0)), -torch.inf).clamp(min=-100.0)


def activation(name: str):
    base, parameter = parse_activation(name)
    return ACTIVATIONS[base](parameter)


def samples_as_rows(spec: Spec, array: np.ndarray, dtype: type = np.float64) -> torch.Tensor:
    """A data array as a samples × features tensor in ``dtype`` (class labels as int64)."""
    if target_kind(spec.loss) == "labels" and np.issubdtype(np.asarray(array).dtype, np.integer):
        return torch.tensor(np.asarray(array, dtype=np.int64))
    array = array if spec.layout == "rows" else array.T
    return torch.tensor(np.asarray(array, dtype=dtype))


def _loss(spec: Spec, tensors: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
          wobble: list[list[torch.Tensor]] | None = None):
    """L. Tensors may carry a leading axis of R independent copies (x: R × N × F, parameters
    R × shape, float targets R × N × C): then L is the sum of the copies' losses, so one
    backward pass gives every copy its own gradient. ``wobble`` holds three factors (1 ± ρ per
    entry) per layer: for the output a_k and, in the backward pass, for ∂L/∂a_k and ∂L/∂z_k;
    and a fourth, c (copies × N × 1), for a layer whose activation mixes its outputs (softmax):
    its vjp s ⊙ (g − Σ_j s_j g_j) gets s ⊙ c·Σ_j |s_j g_j| added (``_common_mode``)."""
    a = x
    for k, name in enumerate(spec.activations, start=1):
        if spec.bias == "node":
            a = F.pad(a, (0, 1), value=1.0)
        W, b = tensors[f"W{k}"], tensors.get(f"b{k}")
        if W.dim() == 2:
            z = F.linear(a, W, b)
        else:  # copies: a batched matrix product per copy
            z = torch.matmul(a, W.transpose(-1, -2)) + (0.0 if b is None else b.unsqueeze(-2))
        if wobble is not None and z.requires_grad:
            z.register_hook(wobble[k - 1][2].mul)
        a = activation(name)(z)
        if wobble is not None and len(wobble[k - 1]) > 3 and z.requires_grad:
            _common_mode(z, a, wobble[k - 1][3])
        if wobble is not None:
            a = a * wobble[k - 1][0]
            if a.requires_grad:
                a.register_hook(wobble[k - 1][1].mul)
            if k == spec.depth and takes_probabilities(spec.loss):  # keep p a probability
                a = a.clamp(max=1.0)
    copies = a.shape[:-2]
    if copies:  # the losses take (N, C): fold the copies into the batch, then unfold
        labels = not y.is_floating_point()
        flat_y = y.repeat(int(np.prod(copies))) if labels else y.reshape(-1, y.shape[-1])
        per_sample = LOSSES[spec.loss](a.reshape(-1, a.shape[-1]), flat_y).reshape(a.shape[:-1])
    else:
        per_sample = LOSSES[spec.loss](a, y)
    total = per_sample.mean(dim=-1) if spec.reduction == "mean" else per_sample.sum(dim=-1)
    if spec.l2:
        inputs = spec.sizes[:-1]
        total = total + 0.5 * spec.l2 * sum(
            tensors[f"W{k}"][..., : inputs[k - 1]].square().sum(dim=(-2, -1))
            for k in range(1, spec.depth + 1))
        if spec.l2_biases:  # each layer's bias, (…, units): the vector, or the node's column
            total = total + 0.5 * spec.l2 * sum(
                (tensors[f"b{k}"] if spec.bias == "vector" else tensors[f"W{k}"][..., inputs[k - 1]])
                .square().sum(dim=-1) for k in range(1, spec.depth + 1))
    return total.sum()


def _common_mode(z: torch.Tensor, s: torch.Tensor, c: torch.Tensor) -> None:
    """In the backward pass, ∂L/∂z ← ∂L/∂z + s ⊙ c·Σ_j |s_j g_j| (g = ∂L/∂s): the rounding of
    the vjp's one shared sum Σ_j s_j g_j, which reaches every output alike. Independent
    perturbations of g average out in it like √C, where its rounding (up to (C − 1)·u·Σ|s_j g_j|)
    does not: a sum that cancels leaves a correct float32 rule that much noise."""
    seen = {}
    s.register_hook(lambda g: seen.setdefault("g", g))
    z.register_hook(lambda dz: dz + s.detach() * c * (s.detach() * seen["g"]).abs().sum(-1, keepdim=True))


def as_leaves(params: Params, dtype: type = np.float64) -> dict[str, torch.Tensor]:
    """The parameters as tensors autograd differentiates, in ``dtype``."""
    return {name: torch.tensor(np.asarray(value, dtype=dtype), requires_grad=True)
            for name, value in params.items()}


def loss(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray) -> float:
    """L in float64."""
    with torch.no_grad():
        return float(_loss(spec, as_leaves(params), samples_as_rows(spec, X), samples_as_rows(spec, Y)))


def gradients(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray,
              dtype: type = np.float64) -> Params:
    """∂L/∂θ by reverse-mode autograd, computed in ``dtype`` (float64 unless asked)."""
    leaves = as_leaves(params, dtype)
    total = _loss(spec, leaves, samples_as_rows(spec, X, dtype), samples_as_rows(spec, Y, dtype))
    grads = torch.autograd.grad(total, list(leaves.values()))
    return {name: g.numpy().astype(np.float64) for name, g in zip(leaves, grads, strict=True)}


def perturbed_gradients(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, rho: float,
                        runs: int, seed: int = 0) -> list[Params]:
    """∂L/∂θ in float64, ``runs`` times, with every parameter, input, float target and layer
    output a_k, and in the backward pass every ∂L/∂a_k and ∂L/∂z_k, multiplied by 1 ± ρ
    (independent random signs per entry): how far relative errors of size ρ — the
    backward-error model of rounding each stored value — carry into the gradient. Perturbing
    the backward values shows what forward perturbations cannot: a sum Wᵀδ that cancels to
    exactly 0 (a softmax's vjp, equal rows of W) leaves a rounded backward pass its rounding
    noise. All runs are copies in one forward and backward pass.

    A network with a softmax layer gets ``runs`` more copies, unperturbed but for the rounding
    of each softmax vjp's shared sum, ±ρ·Σ_j |s_j g_j| per sample (``_common_mode``)."""
    x, y = samples_as_rows(spec, X), samples_as_rows(spec, Y)
    mixing = [RECORDS[parse_activation(name)[0]].across_outputs for name in spec.activations]
    extra = runs if any(mixing) else 0
    values = [np.asarray(value, dtype=np.float64) for value in params.values()]
    shapes = ([tuple(y.shape)] if y.is_floating_point() else []) + [value.shape for value in values] + [
        (x.shape[0], width) for width in spec.sizes[1:] for _ in range(3)] + [tuple(x.shape)]
    factors = iter(copies(np.random.default_rng(seed), rho, runs, extra, shapes, sum(mixing)))

    def shaken(t: torch.Tensor) -> torch.Tensor:  # ``runs`` perturbed copies, then ``extra`` plain
        return t * torch.from_numpy(next(factors))

    if y.is_floating_point():
        y = shaken(y).clamp(0.0, 1.0) if target_kind(spec.loss) == "probabilities" else shaken(y)
    leaves = {name: torch.from_numpy(value * next(factors)).requires_grad_()
              for name, value in zip(params, values, strict=True)}
    wobble = [[torch.from_numpy(next(factors)) for _ in range(3)] for _ in spec.sizes[1:]]  # 1·(1 ± ρ)
    x = shaken(x)
    for factors_k, mixes in zip(wobble, mixing, strict=True):
        if mixes:
            factors_k.append(torch.from_numpy(next(factors)))
    grads = torch.autograd.grad(_loss(spec, leaves, x, y, wobble), list(leaves.values()))
    grads = [g.numpy() for g in grads]
    return [{name: g[run] for name, g in zip(leaves, grads, strict=True)} for run in range(runs + extra)]


def copies(rng: np.random.Generator, rho: float, runs: int, extra: int, shapes: list[tuple[int, ...]],
           mixing: int) -> list[np.ndarray]:
    """``perturbed_gradients``' factors, every sign ±1 from one draw of ``rng``, in this order:
    per shape, (runs + extra, *shape) holding 1 ± ρ in the ``runs`` perturbed copies and 1 in
    the ``extra`` plain ones; then, for each of the ``mixing`` layers (softmax), the common-mode
    factors (runs + extra, N, 1), N = ``shapes[-1][0]`` (the batch): 0 in the perturbed copies,
    ±ρ in the plain ones. The numbers drawing each array's signs in turn gives (one draw of
    integers in {0, 1} is the same stream cut anywhere: ``tests/test_verdicts.py``)."""
    sizes = [runs * int(np.prod(shape)) for shape in shapes]
    n = shapes[-1][0]
    signs = rng.integers(0, 2, size=sum(sizes) + mixing * extra * n)  # 1 for +, 0 for −
    out, start = [], 0
    for shape, size in zip(shapes, sizes, strict=True):
        block = np.ones((runs + extra, *shape))
        block[:runs] = np.array([1.0 - rho, 1.0 + rho])[signs[start:start + size]].reshape(runs, *shape)
        out.append(block)
        start += size
    for _ in range(mixing):
        block = np.zeros((runs + extra, n, 1))
        block[runs:] = np.array([-rho, rho])[signs[start:start + extra * n]].reshape(extra, n, 1)
        out.append(block)
        start += extra * n
    return out


def sgd_step(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray, lr: float) -> Params:
    """Parameters after one torch.optim SGD step, float64."""
    return gradients_and_sgd_step(spec, params, X, Y, lr)[1]


def gradients_and_sgd_step(spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray,
                           lr: float) -> tuple[Params, Params]:
    """∂L/∂θ and the parameters after one torch.optim SGD step (θ ← θ − η·∂L/∂θ, by
    ``torch.optim.sgd.sgd`` with torch.optim.SGD's defaults), from one backward pass."""
    leaves = as_leaves(params)
    _loss(spec, leaves, samples_as_rows(spec, X), samples_as_rows(spec, Y)).backward()
    grads = {name: t.grad.clone().numpy() for name, t in leaves.items()}
    tensors = list(leaves.values())
    with torch.no_grad():
        sgd(tensors, [t.grad for t in tensors], [None] * len(tensors), weight_decay=0.0, momentum=0.0,
            lr=lr, dampening=0.0, nesterov=False, maximize=False)
    return grads, {name: t.detach().numpy() for name, t in leaves.items()}
