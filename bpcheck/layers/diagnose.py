r"""Why a rule for a network of layers differs: each layer checked alone, then a panel of
nearby layers for the one that is wrong.

1. **Alone.** Every layer is run by the rule on the input the rule's own float64 forward gives
   it, with a random dout, and compared with torch's forward and its vector–Jacobian product
   on the same input (``reference.torch_stack.layer_output``), per quantity: the forward
   output, ∂L/∂x and each parameter's gradient. A quantity differs where
   max|D − C| > LAYER_DIAGNOSIS·max|C| (``bpcheck.core.tolerances``).
2. **Why.** A differing quantity is tried against the *nearby layers* of its kind: torch
   forwards with one named thing changed (the kernel flipped, stride 1, statistics over the
   wrong axis, …), whose outputs or vjps are the quantity a mistake of that name would give.
   A hypothesis never looks at the rule. A constant factor c = ⟨D, C⟩/⟨C, C⟩ is tried last
   (a sign flip, a lost 1/N), on two entries or more (one entry fits any factor).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from bpcheck.core.tolerances import LAYER_DIAGNOSIS
from bpcheck.layers.compare import StackRule
from bpcheck.layers.nearby import SEQUENCE_NEARBY
from bpcheck.layers.problem import StackProblem
from manual import stack_network
from manual.spec import Array
from manual.stack import Layer, stride
from reference.torch_stack import layer_output

Nearby = Callable[[torch.Tensor, dict, Layer, dict], torch.Tensor]


def _conv(x, t, layer, **changes) -> torch.Tensor:
    options = {"stride": stride(layer), "padding": layer.padding, "dilation": layer.dilation} | changes
    return F.conv2d(x, t["W"], t.get("b"), **options)


def _cropped(out: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return out[:, :, :like.shape[2], :like.shape[3]]


def _standardised(x, t, layer, axes, per_channel, detach_mean=False, detach_sigma=False) -> torch.Tensor:
    """γ x̂ + β over ``axes``, μ or σ held constant (detached) if asked; ``per_channel``: γ and β
    are (C,) vectors broadcast over channels, else of one sample's shape."""
    var, mean = torch.var_mean(x, dim=axes, keepdim=True, unbiased=False)
    sigma = torch.sqrt(var + layer.eps)
    x_hat = (x - (mean.detach() if detach_mean else mean)) / (sigma.detach() if detach_sigma else sigma)
    shape = (1, -1) + (1,) * (x.dim() - 2) if per_channel else t["gamma"].shape
    return t["gamma"].reshape(shape) * x_hat + t["beta"].reshape(shape)


def _window_sum(x: torch.Tensor, layer: Layer) -> torch.Tensor:
    """Σ over each pooling window: its vjp sends dout to every position."""
    return F.avg_pool2d(x, layer.kernel, stride(layer)) * (layer.kernel[0] * layer.kernel[1])


def _batch_axes(x: torch.Tensor) -> tuple[int, ...]:
    return (0,) if x.dim() == 2 else (0, 2, 3)


#: kind → [(the mistake it stands for, a torch forward of the nearby layer)].
NEARBY: dict[str, list[tuple[str, Nearby]]] = {
    "conv2d": [
        ("the kernel flipped (convolution taken for cross-correlation)",
         lambda x, t, layer, m: _conv(x, t | {"W": t["W"].flip(2, 3)}, layer)),
        ("the padding ignored: ∂L/∂x cut from the padded input's corner, not its middle",
         lambda x, t, layer, m: _conv(F.pad(x, (0, 2 * layer.padding) * 2), t, layer, padding=0)),
        ("stride 1 taken instead of the layer's stride",
         lambda x, t, layer, m: _cropped(_conv(x, t, layer, stride=1), _conv(x, t, layer))),
        ("dilation 1 taken instead of the layer's dilation",
         lambda x, t, layer, m: _cropped(_conv(x, t, layer, dilation=1), _conv(x, t, layer))),
    ],
    "max_pool2d": [("the gradient sent to every position of the window, not to its maximum",
                    lambda x, t, layer, m: _window_sum(x, layer))],
    "avg_pool2d": [("the window's sum taken, without 1/(kh·kw)",
                    lambda x, t, layer, m: _window_sum(x, layer))],
    "batch_norm": [
        ("the mean and variance terms left out (∂L/∂x = γ·dout/σ)",
         lambda x, t, layer, m: _standardised(x, t, layer, _batch_axes(x), True, True, True)),
        ("the variance term left out", lambda x, t, layer, m: _standardised(x, t, layer, _batch_axes(x),
                                                                            True, False, True)),
        ("the mean term left out",
         lambda x, t, layer, m: _standardised(x, t, layer, _batch_axes(x), True, True)),
    ],
    "layer_norm": [("statistics over the batch axis instead of each sample's",
                    lambda x, t, layer, m: _standardised(x, t, layer, (0,), False))],
    "dropout": [("the mask not rescaled by 1/(1 − p)", lambda x, t, layer, m: x * m[layer.name])],
    **SEQUENCE_NEARBY,
}


@dataclass(frozen=True)
class LayerFinding:
    """One quantity of one layer that differs when the layer is checked alone."""

    layer: str  # conv1
    kind: str
    quantity: str  # "forward", "x" or a parameter's short name
    error: float  # max|D − C| / max|C|
    explained_by: tuple[str, ...]  # the nearby layers (or a constant factor) that account for it


def _inputs(rule: StackRule, problem: StackProblem) -> list[tuple[Layer, Array]]:
    """(layer, its input in the rule's own float64 forward), residual bodies included."""
    found = []

    def visit(layers, x):
        for layer in layers:
            found.append((layer, x))
            if layer.kind == "res":
                visit(layer.body, x)
            x = stack_network.forward((layer,), problem.params, x, problem.masks, rule.pairs)[0]
    visit(problem.stack.layers, problem.x)
    return [(layer, x) for layer, x in found if layer.kind != "res"]


def _vjp(forward: Callable, x: Array, own: dict[str, Array], dout: Array) -> tuple[Array, dict[str, Array]]:
    """(output, {"x": ∂⟨dout, f⟩/∂x, parameter: …}) of a torch forward f(x, own tensors);
    no "x" for integer tokens."""
    leaves = {name: torch.tensor(v, requires_grad=True) for name, v in own.items()}
    data = np.issubdtype(x.dtype, np.floating)
    xt = torch.tensor(x, requires_grad=data)
    inputs = {"x": xt} if data else {}
    out = forward(xt, leaves)
    grads = torch.autograd.grad(out, [*inputs.values(), *leaves.values()], torch.tensor(dout),
                                allow_unused=True)
    named = dict(zip([*inputs, *leaves], grads, strict=True))
    return out.detach().numpy(), {k: np.zeros_like(x if k == "x" else own[k]) if g is None else g.numpy()
                                  for k, g in named.items()}


def _distance(candidate: Array, reference: Array) -> float:
    scale = float(np.max(np.abs(reference), initial=0.0))
    gap = float(np.max(np.abs(candidate - reference), initial=0.0))
    return gap / scale if scale else (0.0 if gap == 0 else np.inf)


def _explanations(kind: str, quantity: str, value: Array, x: Array, own: dict, layer: Layer,
                  masks: dict, dout: Array, exact: Array) -> tuple[str, ...]:
    tensors = {name: torch.tensor(mask) for name, mask in masks.items()}
    found = []
    for words, nearby in NEARBY.get(kind, []):
        out, grads = _vjp(lambda xt, t, f=nearby: f(xt, t, layer, tensors), x, own, dout)
        if _distance(value, out if quantity == "forward" else grads[quantity]) <= LAYER_DIAGNOSIS:
            found.append(words)
    if not found and np.count_nonzero(exact) >= 2:  # one entry: any factor would fit
        c = float(np.sum(value * exact) / np.sum(exact * exact))
        if c and _distance(value, c * exact) <= LAYER_DIAGNOSIS:
            found.append(f"the right value times a constant c = {c:.6g}")
    return tuple(found)


def diagnose_layers(rule: StackRule, problem: StackProblem, seed: int = 0) -> list[LayerFinding]:
    """Every layer quantity where the rule differs from torch when the layer runs alone, with
    the nearby layers that explain it (empty where none does)."""
    p, rng, findings = problem.in_float64(), np.random.default_rng(seed), []
    tensors = {name: torch.tensor(mask) for name, mask in p.masks.items()}
    for layer, x in _inputs(rule, p):
        own = stack_network.own(p.params, layer)
        out, cache = stack_network.forward((layer,), p.params, x, p.masks, rule.pairs)
        dout = rng.standard_normal(out.shape)
        dx, grads = stack_network.backward((layer,), [cache[0]], dout, rule.pairs)
        def witness(xt, t, ly=layer):
            return layer_output(ly, xt, {f"{ly}.{k}": v for k, v in t.items()}, tensors)
        exact_out, exact = _vjp(witness, x, own, dout)
        mine = {"forward": out} | ({} if dx is None else {"x": dx}) | {
            name.partition(".")[2]: g for name, g in grads.items()}
        truth = {"forward": exact_out} | exact
        for quantity, value in mine.items():
            if quantity not in truth:  # a gradient of tokens, which have none
                continue
            error = _distance(value, truth[quantity])
            if error > LAYER_DIAGNOSIS:
                findings.append(LayerFinding(layer.name, layer.kind, quantity, error, _explanations(
                    layer.kind, quantity, value, x, own, layer, p.masks, dout, truth[quantity])))
    return findings
