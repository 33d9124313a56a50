"""A user's own activation or loss: its parts, checked on construction, guarded so that an
exception names the part that raised, and registered in every registry for a ``with`` block.
``study.verify`` property-checks it."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from copy import copy
from dataclasses import dataclass

import numpy as np

from manual import activations as manual_activations
from manual import losses as manual_losses
from manual.spec import register_name
from reference import WITNESSES, jax_ref, numeric, torch_ref
from study.tolerances import DERIVATIVE_BOUND

#: The user's callables of each kind of rule, by field name (named when one raises).
PARTS = {"activation": ("value", "derivative", "torch", "jax"),
         "loss": ("per_sample", "gradient", "torch", "jax")}
#: What a user loss's targets may be (class labels are not supported for user losses).
USER_TARGETS = ("values", "probabilities")


@dataclass(frozen=True)
class UserActivation:
    """An elementwise activation: ``value(z)``, ``derivative(z, a)`` with a = value(z), and the
    same function for torch tensors and jax arrays. ``derivative_bound`` bounds |σ′| where the
    tests draw z (|z| ≲ 10), for the rounding tolerance."""

    name: str
    value: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray, np.ndarray], np.ndarray]
    torch: Callable
    jax: Callable
    derivative_bound: float = 2.0

    def __post_init__(self) -> None:
        _check_fields(self, PARTS["activation"])
        bound = self.derivative_bound
        real = isinstance(bound, int | float | np.integer | np.floating) and not isinstance(bound, bool)
        if not (real and math.isfinite(bound) and bound > 0):
            raise ValueError(f"derivative_bound={bound!r} must be a finite number > 0")


@dataclass(frozen=True)
class UserLoss:
    """A loss: ``per_sample(p, y)`` and ``gradient(p, y)`` on outputs × samples arrays (sum over
    axis −2, the outputs), ``torch(p, y)`` on samples × outputs tensors and ``jax(p, y)`` on
    outputs × samples arrays, each returning one value per sample. ``targets``: ``values`` or
    ``probabilities``."""

    name: str
    per_sample: Callable[[np.ndarray, np.ndarray], np.ndarray]
    gradient: Callable[[np.ndarray, np.ndarray], np.ndarray]
    torch: Callable
    jax: Callable
    targets: str = "values"

    def __post_init__(self) -> None:
        _check_fields(self, PARTS["loss"])
        if self.targets == "labels":
            raise ValueError("targets='labels' is not supported for a user loss (its callables "
                             "would get (N,) class labels, not arrays shaped like p); expected one "
                             f"of {list(USER_TARGETS)}")
        if self.targets not in USER_TARGETS:
            raise ValueError(f"targets={self.targets!r} is unknown; expected one of {list(USER_TARGETS)}")


def _check_fields(rule: UserActivation | UserLoss, parts: tuple[str, ...]) -> None:
    """A name the spec vocabulary can hold, and a callable for every part."""
    if not isinstance(rule.name, str) or not rule.name or set(rule.name) & set(":,"):
        raise ValueError(f"name={rule.name!r} must be a non-empty str without ':' or ','")
    for part in parts:
        if not callable(getattr(rule, part)):
            raise TypeError(f"{part}={getattr(rule, part)!r} must be callable")


class UserCodeError(Exception):
    """One of a user rule's callables raised ``error``; ``part`` names which."""

    def __init__(self, rule: str, part: str, error: Exception) -> None:
        super().__init__(f"{rule}: your {part} raised {error!r}")
        self.rule, self.part, self.error = rule, part, error


def _guard(rule: str, part: str, function: Callable) -> Callable:
    """``function``, whose exceptions come out as a ``UserCodeError`` naming ``part``."""

    @functools.wraps(function)
    def call(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except UserCodeError:
            raise
        except Exception as error:
            raise UserCodeError(rule, part, error) from error

    return call


def guarded(rule: UserActivation | UserLoss) -> UserActivation | UserLoss:
    """The same rule with every callable guarded (``_guard``)."""
    parts = PARTS["activation" if isinstance(rule, UserActivation) else "loss"]
    return dataclasses.replace(rule, **{part: _guard(rule.name, part, getattr(rule, part))
                                        for part in parts})


def _registries() -> list:
    """Every mutable registry a user rule joins."""
    from manual import spec

    return [spec.ACTIVATIONS, spec.LOSSES, spec.LOSS_TARGETS, manual_activations.ACTIVATIONS,
            manual_losses.LOSSES, torch_ref.ACTIVATIONS, torch_ref.LOSSES, jax_ref.ACTIVATIONS,
            jax_ref.LOSSES, jax_ref.UNPADDED_LOSSES, numeric.ACTIVATIONS, numeric.LOSSES,
            DERIVATIVE_BOUND, WITNESSES]


@contextmanager
def registered(rule: UserActivation | UserLoss) -> Iterator[None]:
    """Register the rule for the duration of a ``with`` block, then restore every registry."""
    saved = [(registry, copy(registry)) for registry in _registries()]
    try:
        register_user_rule(rule)
        yield
    finally:
        for registry, before in saved:
            if isinstance(registry, list):
                registry[:] = before
            else:
                registry.clear()
                registry.update(before)
        manual_activations.activation.cache_clear()


def register_user_rule(rule: UserActivation | UserLoss) -> None:
    """Make the rule a member of every registry (idempotent for the same name); its callables
    are guarded, so that an exception says which of them raised."""
    if isinstance(rule, UserActivation | UserLoss):
        rule = guarded(rule)
    if isinstance(rule, UserActivation):
        register_name("activation", rule.name)
        manual_activations.register(rule.name, lambda _: manual_activations.Activation(
            rule.name, rule.value, rule.derivative))
        manual_activations.activation.cache_clear()
        torch_ref.ACTIVATIONS[rule.name] = lambda _: rule.torch
        jax_ref.ACTIVATIONS[rule.name] = lambda _: lambda z, mask: rule.jax(z)
        numeric.ACTIVATIONS[rule.name] = lambda _: rule.value
        DERIVATIVE_BOUND[rule.name] = rule.derivative_bound
    elif isinstance(rule, UserLoss):
        register_name("loss", rule.name, rule.targets)
        manual_losses.register(manual_losses.Loss(rule.name, rule.per_sample, rule.gradient))
        torch_ref.LOSSES[rule.name] = rule.torch
        jax_ref.LOSSES[rule.name] = lambda p, y, mask: rule.jax(p, y)
        jax_ref.UNPADDED_LOSSES.add(rule.name)  # its padding behaviour is unknown
        numeric.LOSSES[rule.name] = lambda p, y: rule.per_sample(np.swapaxes(p, -1, -2),
                                                                 np.swapaxes(y, -1, -2))
    else:
        raise TypeError(f"{rule!r} is neither a UserActivation nor a UserLoss")
    for name, witness in list(WITNESSES.items()):  # refresh the witnesses' name sets
        module = {"torch": torch_ref, "jax": jax_ref, "numeric": numeric}[name]
        WITNESSES[name] = type(witness)(**{**witness.__dict__,
                                           "activations": frozenset(module.ACTIVATIONS),
                                           "losses": frozenset(module.LOSSES)})
