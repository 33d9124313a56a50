"""The diagnosis panel's nearby models: the torch witness's network with one named thing changed
in its backward pass or loss (``Variant``), and the exact gradient of each (``variant_gradients``).

Each is built from torch's own autograd pieces with a custom backward where the hypothesis
lives in the backward pass: an activation's vjp missing, doubled or taken at the output; the
error sent back through W, not Wᵀ, or through weights this step already changed; a softmax
loss's output error softmax(z) − T; the output error a − T at the output layer's z, whatever
its activation and loss. An undeclared penalty λ/2‖θ‖² on a part of θ has its λ fitted
(``with_fitted_penalty``). None of it looks at the rule under study.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from bpcheck.mlp.problem import Problem
from manual.spec import ACTIVATIONS, Params, Spec, parse_activation
from reference import torch_ref


@dataclass(frozen=True)
class Variant:
    """One hypothesis, or a combination: what differs from the exact backward pass."""

    loss: str | None = None  # the exact gradient of this loss instead
    no_penalty: bool = False
    bias_penalty: bool | None = None  # the penalty on biases or not, overriding the spec's l2_biases
    penalty_scale: float = 1.0  # the penalty's gradient times this (2: λ/2‖W‖² read as λ‖W‖²)
    unit_targets: bool = False  # a softmax loss's output error softmax(z) − t, as if Σt = 1
    output_minus_targets: bool = False  # ∂L/∂z_L taken as a_L − t (softmax-CE's p − y shortcut)
    penalty_on: str = ""  # an undeclared penalty on PENALTY_PARTS' part, λ = ``extra_l2`` …
    extra_l2: float = 0.0  # … fitted to the rule's directions (``with_fitted_penalty``)
    stale: bool = False
    factor: tuple[tuple[int, str], ...] = ()  # (layer, "missing" | "extra" | "at_output" | …)
    transposed: bool = False
    bias_column_first: bool = False
    names: tuple[str, ...] = field(default=(), compare=False)

    def __add__(self, other: Variant) -> Variant:
        merged = {key: getattr(self, key) or getattr(other, key)
                  for key in ("loss", "no_penalty", "stale", "transposed", "bias_column_first",
                              "unit_targets", "output_minus_targets", "penalty_on", "extra_l2")}
        bias_penalty = other.bias_penalty if self.bias_penalty is None else self.bias_penalty
        scale = other.penalty_scale if self.penalty_scale == 1.0 else self.penalty_scale
        return Variant(**merged, bias_penalty=bias_penalty, penalty_scale=scale,
                       factor=self.factor + other.factor,
                       names=self.names + other.names)

    @property
    def complexity(self) -> int:
        """Its hypotheses, plus 1 for a fitted λ (a constant read off the rule, like a factor)."""
        return len(self.names) + bool(self.penalty_on)


#: The parts of θ an undeclared penalty can cover: the weights (W_k without a bias node's
#: column), the biases (b_k, or that column), or both.
PENALTY_PARTS = {"weights": ("weights",), "biases": ("biases",), "both": ("weights", "biases")}


class _Activation(torch.autograd.Function):
    """a = σ(z) forward; backward: σ's vector–Jacobian product, or the named variant of it."""

    @staticmethod
    def forward(ctx, z, name, mode):
        ctx.save_for_backward(z)
        ctx.name, ctx.mode = name, mode
        return torch_ref.activation(name)(z)

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        f = torch_ref.activation(ctx.name)

        def vjp(at, v):
            with torch.enable_grad():
                x = at.detach().requires_grad_(True)
                return torch.autograd.grad(f(x), x, v)[0]

        def output_form_at_z():  # σ′ written for the output, given z: a(1 − a) → z(1 − z)
            form = ACTIVATIONS[parse_activation(ctx.name)[0]].derivative_from_output
            return g * torch.as_tensor(form(z.detach().numpy()))

        result = {"missing": lambda: g, "extra": lambda: vjp(z, vjp(z, g)),
                  "at_output": lambda: vjp(f(z), g), "exact": lambda: vjp(z, g),
                  "output_form_at_z": output_form_at_z}[ctx.mode]()
        return result, None, None


class _UnitTargets(torch.autograd.Function):
    """ℓ_n of a softmax loss forward; backward: softmax(z) − t, right only where Σ_c t_c = 1
    (the exact one is softmax(z)·Σ_c t_c − t)."""

    @staticmethod
    def forward(ctx, z, y, name):
        ctx.save_for_backward(z, y)
        return torch_ref.LOSSES[name](z, y)

    @staticmethod
    def backward(ctx, g):
        z, y = ctx.saved_tensors
        return g[:, None] * (torch.softmax(z, dim=-1) - y), None, None


class _OutputMinusTargets(torch.autograd.Function):
    """ℓ_n(σ(z), t) forward; backward: σ(z) − t at z, σ the output activation, whatever the loss
    (exact for sigmoid with bce; softmax cross-entropy's p − y elsewhere)."""

    @staticmethod
    def forward(ctx, z, y, loss, name):
        a = torch_ref.activation(name)(z)
        ctx.save_for_backward(a, y)
        return torch_ref.LOSSES[loss](a, y)

    @staticmethod
    def backward(ctx, g):
        a, y = ctx.saved_tensors
        t = F.one_hot(y, a.shape[-1]).to(a.dtype) if y.dtype == torch.int64 else y
        return g[:, None] * (a - t), None, None, None


class _Linear(torch.autograd.Function):
    """z = a Wᵀ (+ b) forward; backward sends the error through ``W_back`` instead of W."""

    @staticmethod
    def forward(ctx, a, W, W_back, b):
        ctx.save_for_backward(a, W_back)
        ctx.has_bias = b is not None
        z = a @ W.T
        return z + b if b is not None else z

    @staticmethod
    def backward(ctx, g):
        a, W_back = ctx.saved_tensors
        return g @ W_back, g.T @ a, None, g.sum(0) if ctx.has_bias else None


def _back_weights(spec: Spec, W: torch.Tensor, updated: torch.Tensor | None, v: Variant) -> torch.Tensor:
    W = updated if updated is not None else W
    if v.transposed and W.shape[0] == W.shape[1]:
        return W.T
    if v.bias_column_first and spec.bias == "node":
        return torch.cat([W[:, 1:], W[:, :1]], dim=1)
    return W


def _variant_loss(spec: Spec, leaves: dict, x, y, v: Variant, updated: dict):
    a = x
    modes = dict(v.factor)
    for k, name in enumerate(spec.activations, start=1):
        if spec.bias == "node":
            a = F.pad(a, (0, 1), value=1.0)
        W = leaves[f"W{k}"]
        a = _Linear.apply(a, W, _back_weights(spec, W.detach(), updated.get(k), v), leaves.get(f"b{k}"))
        if k == spec.depth and v.output_minus_targets:
            break
        a = _Activation.apply(a, name, modes.get(k, "exact"))
    if v.output_minus_targets:
        per_sample = _OutputMinusTargets.apply(a, y, v.loss or spec.loss, spec.activations[-1])
    elif v.unit_targets:
        per_sample = _UnitTargets.apply(a, y, spec.loss)
    else:
        per_sample = torch_ref.LOSSES[v.loss or spec.loss](a, y)
    total = per_sample.mean() if spec.reduction == "mean" else per_sample.sum()
    if spec.l2 and not v.no_penalty:
        on_biases = spec.l2_biases if v.bias_penalty is None else v.bias_penalty
        total = total + 0.5 * spec.l2 * v.penalty_scale * _squares(
            spec, leaves, ("weights", "biases") if on_biases else ("weights",))
    if v.penalty_on and v.extra_l2:
        total = total + 0.5 * v.extra_l2 * _squares(spec, leaves, PENALTY_PARTS[v.penalty_on])
    return total


def _parts(spec: Spec, params: dict, parts: tuple[str, ...]) -> list:
    """The arrays of θ a penalty on ``parts`` covers: W_k[:, :inputs] for the weights, b_k (or
    a bias node's column W_k[:, -1]) for the biases."""
    inputs, found = spec.sizes[:-1], []
    for k in range(1, spec.depth + 1):
        if "weights" in parts:
            found.append(params[f"W{k}"][:, : inputs[k - 1]])
        if "biases" in parts:
            found.append(params[f"b{k}"] if spec.bias == "vector" else params[f"W{k}"][:, -1])
    return found


def _squares(spec: Spec, leaves: dict, parts: tuple[str, ...]) -> torch.Tensor:
    """Σ‖θ‖² over ``parts`` (``_parts``)."""
    return sum(part.square().sum() for part in _parts(spec, leaves, parts))


def penalty_gradient(spec: Spec, params: Params, part: str) -> Params:
    """∂(½‖θ‖²)/∂θ over PENALTY_PARTS[part]: θ on the entries it covers, 0 elsewhere."""
    mask = {name: np.zeros(np.shape(value), bool) for name, value in params.items()}
    for covered in _parts(spec, mask, PENALTY_PARTS[part]):
        covered[...] = True  # a view into mask's array
    return {name: np.where(mask[name], np.asarray(params[name], np.float64), 0.0) for name in params}


def with_fitted_penalty(problem: Problem, v: Variant, directions: Params) -> Variant:
    """``v`` with λ of its undeclared penalty fitted to the directions D by least squares over
    every parameter: λ = ⟨D − G, M⟩/⟨M, M⟩, G the gradient without it, M = ``penalty_gradient``
    (λ = 0 where M is 0 or D is not finite)."""
    p = problem.in_float64()
    base = variant_gradients(problem, replace(v, extra_l2=0.0), directions)
    M = penalty_gradient(p.spec, p.params, v.penalty_on)
    G, M, D = (np.concatenate([np.ravel(np.asarray(part[name], np.float64)) for name in p.params])
               for part in (base, M, directions))
    if not np.any(M) or not np.all(np.isfinite(D)):
        return replace(v, extra_l2=0.0)
    return replace(v, extra_l2=float(np.dot(D - G, M) / np.dot(M, M)))


def variant_gradients(problem: Problem, v: Variant, directions: Params) -> Params:
    """The gradient under hypothesis ``v``. With ``stale``, every error is sent back through the
    weights above as the rule itself has already updated them: W_k − η·D_k, D its directions."""
    p = problem.in_float64()
    x, y = torch_ref.samples_as_rows(p.spec, p.X), torch_ref.samples_as_rows(p.spec, p.Y)
    updated = {k: torch.tensor(p.params[f"W{k}"] - p.lr * np.asarray(directions[f"W{k}"], np.float64))
               for k in range(2, p.spec.depth + 1)} if v.stale else {}
    leaves = torch_ref.as_leaves(p.params)
    total = _variant_loss(p.spec, leaves, x, y, v, updated)
    found = torch.autograd.grad(total, list(leaves.values()))
    return {name: g.numpy() for name, g in zip(leaves, found, strict=True)}
