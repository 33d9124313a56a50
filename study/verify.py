"""Your own rules: register an activation or loss from your module and property-check it.

A user rule brings its NumPy value, its hand-derived derivative, and a PyTorch and a JAX
forward to compare against. ``register_user_rule`` puts each part where it belongs — the name
into the spec vocabulary, the value and derivative into ``manual/``, the forwards into the
witnesses (the finite-difference witness differentiates the user's own NumPy value) — and
``verify`` runs the property check inside random networks of the family against every witness.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from copy import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, assume, given, settings

from manual import activations as manual_activations
from manual import losses as manual_losses
from manual.rules import RULES, UpdateRule
from manual.spec import register_name
from reference import WITNESSES, jax_ref, numeric, torch_ref
from study.compare import Problem, RuleReport, ask_witnesses, compare_rule
from study.tolerances import DERIVATIVE_BOUND, informative


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
    """Make the rule a member of every registry (idempotent for the same name)."""
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


def load_user_rule(target: str) -> UserActivation | UserLoss:
    """``"my_module:my_rule"`` (importable, or a .py path) → the object it names."""
    module_name, colon, attribute = target.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"expected MODULE:NAME (e.g. my_rules:swish), got {target!r}")
    path = Path(module_name)
    if path.suffix == ".py":
        sys.path.insert(0, str(path.parent.resolve()))
        module_name = path.stem
    elif str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    rule = getattr(importlib.import_module(module_name), attribute, None)
    if not isinstance(rule, UserActivation | UserLoss):
        raise TypeError(f"{target} is {rule!r}; expected a UserActivation or UserLoss")
    return rule


@dataclass
class Verdict:
    """The outcome of a search: networks checked, when the first disagreement came, the smallest."""

    rule: str
    examples: int
    failure: Problem | None = None
    report: RuleReport | None = None
    error: BaseException | None = None
    first_failure_at: int | None = None  # examples run up to and including the first failure


def hunt(rule: UpdateRule, strategy, max_examples: int, seed: int = 0,
         finite_differences: bool = True) -> Verdict:
    """Search random problems for one where ``rule`` disagrees with a witness; Hypothesis then
    shrinks it, and the verdict keeps the minimal problem it ends with and its report."""
    from hypothesis import seed as hypothesis_seed

    from study.strategies import away_from_kinks

    verdict = Verdict(rule.name, 0)

    @hypothesis_seed(seed)
    @settings(max_examples=max_examples, deadline=None, database=None, print_blob=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(problem=strategy)
    def check(problem: Problem) -> None:
        assume(away_from_kinks(problem))
        assume(rule.unsupported_reason(problem.spec) is None)
        truth = ask_witnesses(problem, finite_differences)
        assume(informative(problem.spec, problem.n_samples, problem.spec.dtype, truth.conditioning))
        report = compare_rule(rule, problem, truth)
        verdict.examples += 1
        if not report.agrees:
            if verdict.first_failure_at is None:
                verdict.first_failure_at = verdict.examples
            verdict.failure, verdict.report = problem, report  # the last one is the shrunk one
            raise AssertionError(f"{rule.name} disagrees")

    try:
        check()
    except AssertionError as error:
        verdict.error = error
    return verdict


def verify(rule: UserActivation | UserLoss, max_examples: int = 200, seed: int = 0) -> Verdict:
    """Property-check the derived rule with the user's rule inside random networks against every
    witness; on failure keep the shrunk minimal network Hypothesis ends with."""
    from study.strategies import problems, specs

    # up to 3 hidden layers: enough to put the rule in hidden and output positions, and each
    # depth costs the jax witness a compilation for the newly registered rule
    shape = {"max_hidden_layers": 3}
    strategy = (specs(include=rule.name, **shape) if isinstance(rule, UserActivation)
                else specs(loss=rule.name, **shape))
    with registered(rule):
        verdict = hunt(RULES["derived"], problems(strategy), max_examples, seed)
    verdict.rule = rule.name
    return verdict
