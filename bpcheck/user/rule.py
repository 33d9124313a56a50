r"""Your own backpropagation: a whole hand-written gradient or training step, in your conventions.

A ``UserRule`` declares what the code computes, the model it claims to differentiate (by the
family's names: activations, loss, reduction, penalty) and how it holds things
(``bpcheck.mlp.conventions``). bpcheck then calls it on random networks in those conventions and
turns what it returns into a direction D and a step θ′ of its own rule type:

* ``gradients``: ``function(params, X, Y)`` returns ∂L/∂θ = D; θ′ = θ − η·D;
* ``update``: ``function(params, X, Y, lr)`` returns Δθ, added: θ′ = θ + Δθ; D = (θ − θ′)/η;
* ``new_params``: ``function(params, X, Y, lr)`` returns θ′; D = (θ − θ′)/η;
* ``in_place``: ``model(sizes, lr)`` builds your object, bpcheck sets its attributes (the keys
  of the ``params`` template) to copies of θ, calls ``function(obj, X, Y, lr)`` — a training
  step that changes them in place — and reads them back as θ′.

With ``per_sample``, ``function(params, x, y)`` takes one sample (a batch of one in your data
layout, or a flat vector with ``sample="vector"``) and returns that sample's ∂ℓ_n/∂θ; bpcheck
sums the samples' results, or averages them for ``reduction="mean"``.

Your code always gets copies: nothing it does reaches bpcheck's arrays. Whatever it raises, and
any result of the wrong container, shape or dtype or with a NaN, is a ``UserCodeError``: a
failure the search shrinks to the smallest network that shows it, never a pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from bpcheck.core.datasets import random_data
from bpcheck.core.user_code import UserCodeError
from bpcheck.mlp.conventions import Conventions
from bpcheck.mlp.problem import Problem
from bpcheck.user.guards import guard
from manual.initialisers import truncated_normal
from manual.losses import one_hot
from manual.rules import UpdateRule
from manual.spec import ACTIVATIONS, LOSSES, REDUCTIONS, Params, Spec, is_real, one_of, parse_activation

COMPUTES = ("gradients", "update", "new_params", "in_place")
SAMPLES = ("batch_of_one", "vector")


@dataclass(frozen=True)
class UserRule:
    """A hand-written gradient or training step and the model it claims (module docstring).

    Args:
        name: how reports name it.
        function: your code; what it takes and returns is set by ``computes``.
        computes: ``"gradients"``, ``"update"``, ``"new_params"`` or ``"in_place"``.
        per_sample: ``function`` takes one sample and returns its ∂ℓ_n/∂θ; bpcheck sums them.
        model: ``model(sizes, lr)`` builds your object (``computes="in_place"`` only).
        activations: one name per layer, or ``(hidden, output)`` with the hidden one repeated
            for each of ``hidden_layers``.
        loss: the loss's name (``"half-sse"``, ``"mse"``, ``"bce"``, ...).
        reduction: ``"sum"`` or ``"mean"`` over the samples.
        l2: λ of the penalty λ/2 Σ‖W‖².
        l2_biases: the penalty covers the biases too.
        hidden_layers: an int, or an inclusive (low, high) range to draw from; default 1. Given
            with ``sizes`` or one activation per layer, it must agree with the depth they fix.
        sizes: the layer widths, input first (else drawn).
        conventions: how your code holds parameters, data and targets
            (``bpcheck.mlp.conventions``).
        sample: a per-sample function's sample: ``"batch_of_one"`` in your data layout, or
            ``"vector"``, a flat vector."""

    name: str
    function: Callable
    computes: str = "gradients"
    per_sample: bool = False
    model: Callable | None = None
    activations: tuple[str, ...] = ("sigmoid", "sigmoid")
    loss: str = "half-sse"
    reduction: str = "sum"
    l2: float = 0.0
    l2_biases: bool = False
    hidden_layers: int | tuple[int, int] | None = None  # None: 1
    sizes: tuple[int, ...] | None = None
    conventions: Conventions = field(default_factory=Conventions)
    sample: str = "batch_of_one"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name={self.name!r} must be a non-empty str")
        if not callable(self.function):
            raise TypeError(f"function={self.function!r} must be callable")
        one_of(self.computes, COMPUTES, "computes")
        one_of(self.reduction, REDUCTIONS, "reduction")
        one_of(self.sample, SAMPLES, "sample")
        one_of(self.loss, LOSSES, "loss")
        if isinstance(self.activations, str) or not self.activations:
            raise TypeError(f"activations={self.activations!r} must be a tuple of names")
        object.__setattr__(self, "activations", tuple(self.activations))
        for i, name in enumerate(self.activations):
            parse_activation(name, f"activations[{i}]")
        output = ACTIVATIONS[parse_activation(self.activations[-1])[0]]
        if LOSSES[self.loss].across_outputs and output.across_outputs:
            raise ValueError(f"loss={self.loss!r} takes logits and applies the softmax itself; with "
                             f"activations[-1]={self.activations[-1]!r} your network would apply it "
                             "twice: declare the output activation 'identity'")
        if not isinstance(self.conventions, Conventions):
            raise TypeError(f"conventions={self.conventions!r} must be a Conventions")
        if not (is_real(self.l2) and math.isfinite(self.l2) and self.l2 >= 0):
            raise ValueError(f"l2={self.l2!r} must be a finite number >= 0")
        if self.computes == "in_place":
            if not callable(self.model):
                raise TypeError("computes='in_place' needs model=, a callable (sizes, lr) → your "
                                "object holding the parameters")
            if not isinstance(self.conventions.template(1), dict):
                raise ValueError("computes='in_place' needs conventions.params to be a dict "
                                 "{attribute name: parameter names}")
        if self.per_sample and self.computes != "gradients":
            raise ValueError("per_sample=True needs computes='gradients': a per-sample step would "
                             "change the parameters between samples")
        if self.per_sample and self.l2:
            raise ValueError("per_sample=True with l2 > 0: a per-sample rule returns one sample's "
                             "∂ℓ_n/∂θ, and a penalty belongs to the batch; give a batch rule")
        self._check_networks()  # sizes, hidden_layers and the activations, against each other
        low, high = self.depths()
        fixed = self.conventions.fixed_depth
        if fixed is not None and (low, high) != (fixed, fixed):
            depths = f"{low}" if low == high else f"{low}–{high}"
            raise ValueError(f"conventions.params names {fixed} layers (W1 … W{fixed}); the network "
                             f"has {depths} (activations={self.activations}, hidden_layers="
                             f"{self.hidden_layers!r}, sizes={self.sizes}): write W{{k}}, b{{k}} to "
                             f"repeat per layer, or declare hidden_layers={fixed - 1}")

    def depths(self) -> tuple[int, int]:
        """(fewest, most) weight layers the rule is checked with."""
        given = 1 if self.hidden_layers is None else self.hidden_layers
        low, high = (given, given) if not isinstance(given, tuple | list) or len(given) != 2 else given
        if not (all(isinstance(n, int) and not isinstance(n, bool) for n in (low, high))
                and 0 <= low <= high <= 6):
            raise ValueError(f"hidden_layers={given!r}: expected an int or a (low, high) range of "
                             "ints within 0…6")
        fixed, by = ((len(self.sizes) - 1, f"sizes={tuple(self.sizes)}") if self.sizes is not None else
                     (len(self.activations), f"activations={self.activations}")
                     if len(self.activations) > 2 else (None, ""))
        if fixed is None:
            return low + 1, high + 1
        if self.hidden_layers is not None and not low + 1 <= fixed <= high + 1:
            raise ValueError(f"hidden_layers={given!r} and {by} disagree: {by} makes {fixed - 1} "
                             f"hidden layer{'s' * (fixed != 2)}; give one of them, or agreeing ones")
        return fixed, fixed

    def _check_networks(self) -> None:
        """Every network the rule is checked on is a valid ``Spec`` (widths >= 1, one activation
        per layer, …), said of the rule's own arguments before any search."""
        sizes = self.sizes
        if sizes is not None:
            if isinstance(sizes, str) or not isinstance(sizes, tuple | list):
                raise TypeError(f"sizes={sizes!r} must be a tuple of layer widths (F, H…, C)")
            object.__setattr__(self, "sizes", tuple(sizes))
        low, high = self.depths()
        for depth in range(low, high + 1):
            widths = self.sizes if self.sizes is not None else (1,) * (depth + 1)
            try:
                Spec(widths, self.activations_for(depth), self.loss, self.reduction, l2=float(self.l2),
                     l2_biases=self.l2_biases)
            except (TypeError, ValueError) as error:
                raise type(error)(f"{error} (UserRule {self.name!r}: sizes={self.sizes}, "
                                  f"activations={self.activations})") from None

    def activations_for(self, depth: int) -> tuple[str, ...]:
        """One activation per layer of a ``depth``-layer network."""
        if len(self.activations) == depth:
            return self.activations
        if len(self.activations) != 2:
            raise ValueError(f"activations={self.activations!r} name {len(self.activations)} "
                             f"layers; the network has {depth}")
        return (self.activations[0],) * (depth - 1) + (self.activations[1],)

    def pinned(self, layers: tuple[int, ...] | None = None, activations: tuple[str, ...] | None = None,
               loss: str | None = None) -> UserRule:
        """The same rule with the network pinned further (the CLI's --layers, --activations,
        --loss); ``sizes`` and ``activations`` must agree on the depth."""
        changes: dict[str, Any] = {}
        if activations is not None:
            if isinstance(activations, str) or not isinstance(activations, tuple | list):
                raise TypeError(f"activations={activations!r} must be a tuple of names")
            changes["activations"] = tuple(activations)
        if layers is not None:
            if isinstance(layers, str) or not isinstance(layers, tuple | list):
                raise TypeError(f"layers={layers!r} must be a tuple of layer widths (F, H…, C)")
            changes["sizes"] = tuple(layers)
            depth = len(layers) - 1
            names = tuple(activations) if activations is not None else self.activations
            if len(names) not in (2, depth):
                raise ValueError(f"layers={tuple(layers)} makes a network of depth {depth}; "
                                 f"activations={names} name {len(names)} layers (one per layer, "
                                 "or HIDDEN,OUTPUT)")
        if loss is not None:
            changes["loss"] = loss
        if layers is not None or len(changes.get("activations", ())) > 2:
            changes["hidden_layers"] = None  # the pinned network fixes the depth
        try:
            return replace(self, **changes)
        except (TypeError, ValueError) as error:
            pins = ", ".join(f"{'layers' if key == 'sizes' else key}={value!r}"
                             for key, value in changes.items() if key != "hidden_layers")
            raise type(error)(f"{pins}: {error}") from None

    def update_rule(self) -> UpdateRule:
        """The rule as bpcheck's own rule type: (directions, step) from one call of your code."""

        def both(spec, params, X, Y, lr):
            return _directions_and_step(self, spec, params, X, Y, lr)

        return UpdateRule(self.name, f"your {self.computes} ({self.conventions.data}, "
                          f"{self.conventions.weights} weights, bias {self.conventions.bias})",
                          claims_correct=True,
                          directions=lambda *args: both(*args)[0], step=lambda *args: both(*args)[1],
                          both=both, directions_from_step=self.computes != "gradients")


# --- calling the user's code ------------------------------------------------------------------
def user_targets(rule: UserRule, spec: Spec, Y: np.ndarray) -> np.ndarray:
    """The targets in the user's convention (labels or one-hot from the drawn labels)."""
    labels = rule.conventions.targets
    if labels == "as_loss":
        return Y.copy()
    if LOSSES[spec.loss].targets != "labels":  # bpcheck's Y is one-hot: back to labels
        Y = np.argmax(Y, axis=0 if spec.layout == "cols" else 1)
    if labels == "labels":
        return Y.copy()
    hot = one_hot(Y, spec.sizes[-1], np.dtype(spec.dtype))
    return hot if spec.layout == "cols" else hot.T


def _call(rule: UserRule, *args) -> Any:
    """The user's function, guarded (``guard``); past the time limit the report names no
    shapes, the arguments being the user's own containers."""
    return guard(rule.name, "function", rule.function, given=str)(*args)


def _checked(rule: UserRule, spec: Spec, value: Any, what: str) -> Params:
    try:
        return rule.conventions.params_from_user(spec, value, what)
    except (TypeError, ValueError) as error:
        raise UserCodeError(rule.name, "result", error) from error


def _samples(rule: UserRule, spec: Spec, X: np.ndarray, Y: np.ndarray):
    """(x_n, y_n) for each sample, as batches of one or as flat vectors."""
    for n in range(X.shape[1] if spec.layout == "cols" else X.shape[0]):
        cut = (slice(None), slice(n, n + 1)) if spec.layout == "cols" else (slice(n, n + 1),)
        x, y = X[cut], (Y[n:n + 1] if Y.ndim == 1 else Y[cut])
        if rule.sample == "vector":
            x, y = x.reshape(-1), (y[0] if y.ndim == 1 else y.reshape(-1))
        yield x.copy(), np.array(y, copy=True)


def _directions_and_step(rule: UserRule, spec: Spec, params: Params, X: np.ndarray, Y: np.ndarray,
                         lr: float) -> tuple[Params, Params]:
    conventions, target = rule.conventions, user_targets(rule, spec, Y)
    typed_lr = np.dtype(spec.dtype).type(lr)
    if rule.per_sample:
        parts = [_checked(rule, spec, _call(rule, conventions.params_to_user(spec, params), x, y),
                          f"returned (sample {n})")
                 for n, (x, y) in enumerate(_samples(rule, spec, X, target))]
        directions = {name: np.sum([part[name] for part in parts], axis=0, dtype=spec.dtype)
                      for name in params}
        if rule.reduction == "mean":
            directions = {name: value / np.dtype(spec.dtype).type(len(parts))
                          for name, value in directions.items()}
        return directions, _stepped(params, directions, typed_lr)
    user = conventions.params_to_user(spec, params)
    if rule.computes == "gradients":
        directions = _checked(rule, spec, _call(rule, user, X.copy(), target), "returned")
        return directions, _stepped(params, directions, typed_lr)
    if rule.computes == "in_place":
        new = _checked(rule, spec, _train_in_place(rule, spec, user, X.copy(), target, lr),
                       "attributes after the step")
    else:
        result = _checked(rule, spec, _call(rule, user, X.copy(), target, lr), "returned")
        new = result if rule.computes == "new_params" else {
            name: params[name] + result[name] for name in params}
    directions = {name: (np.asarray(params[name], np.float64) - new[name]) / lr for name in params}
    return directions, new


def _stepped(params: Params, directions: Params, lr: np.floating) -> Params:
    with np.errstate(over="ignore", invalid="ignore"):
        return {name: params[name] - lr * directions[name] for name in params}


def _train_in_place(rule: UserRule, spec: Spec, user: dict, X: np.ndarray, Y: np.ndarray,
                    lr: float) -> dict:
    obj = guard(rule.name, "model", rule.model)(spec.sizes, lr)
    for attribute, value in user.items():
        setattr(obj, attribute, value)
    _call(rule, obj, X, Y, lr)
    return {attribute: getattr(obj, attribute, None) for attribute in user}


# --- the networks it is checked on ------------------------------------------------------------
def resample(rule: UserRule, problem: Problem, rng: np.random.Generator) -> Problem:
    """Another problem of the same network, batch size and η, with values drawn afresh (as the
    search draws them, targets in the rule's convention): a diagnosis that must hold on these
    too cannot lean on the coincidences of a shrunk example (zeros, ties, σ′ all equal)."""
    spec, n = problem.spec, problem.n_samples
    params = truncated_normal(spec, rng)
    X, Y = random_data(spec, n, rng)
    if rule.conventions.targets != "as_loss" and LOSSES[spec.loss].targets != "labels":
        Y = one_hot(rng.integers(0, spec.sizes[-1], n), spec.sizes[-1], np.dtype(spec.dtype))
        Y = Y if spec.layout == "cols" else Y.T
    return Problem(spec, params, X, Y, problem.lr)
