"""Your own rules: an activation or loss from your module, registered and property-checked.

A user rule brings its NumPy value, its hand-derived derivative, and a PyTorch and a JAX
forward to compare against. Its parts are checked on construction and guarded
(``bpcheck.user.guards``), so that an exception names the part that raised.
``REGISTRY.scoped(rule)`` puts each part where it belongs for a ``with`` block (``entries``) —
the record into the spec vocabulary, the value and derivative into ``manual/``, the forwards
into the witnesses (the finite-difference witness differentiates the user's own NumPy value) —
and ``verify`` runs the property check inside random networks of the family against every
witness. Anything the user's code raises is a failure, never a pass.
"""

from __future__ import annotations

import functools
import importlib
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from bpcheck.mlp.problem import Problem
from bpcheck.user import precision
from bpcheck.user.guards import PARTS, guarded
from bpcheck.user.namespace import activation_fields, loss_fields
from manual.activations import Activation
from manual.rules import RULES
from manual.spec import ACTIVATIONS as ACTIVATION_RECORDS
from manual.spec import LOSSES as LOSS_RECORDS
from manual.spec import is_real, one_of
from manual.vocabulary import TARGET_KINDS, ActivationRecord, LossRecord, clamping

if TYPE_CHECKING:
    from bpcheck.core.search import Verdict

#: The names bpcheck's own activations and losses go by (a user's rule must not take one).
BUILT_IN = {"activation": frozenset(ACTIVATION_RECORDS), "loss": frozenset(LOSS_RECORDS)}
#: What a user loss's targets may be (``manual.vocabulary.TARGET_KINDS``): like p — values,
#: probabilities, distributions (each sample's summing to one) or one-hot — or (N,) labels.
USER_TARGETS = TARGET_KINDS
#: How a user loss's NumPy and jax callables take p and y: outputs × samples, or samples × outputs.
LOSS_LAYOUTS = ("outputs_by_samples", "samples_by_outputs")
#: the outputs a loss on probabilities is drawn after, as for the built-in bce
PROBABILITY_OUTPUTS = LOSS_RECORDS["bce"].probability_outputs


@dataclass(frozen=True)
class UserActivation:
    """An elementwise activation of yours, checked element by element and inside random
    networks. Registered, it becomes an ``ActivationRecord`` like every built-in activation.

    Args:
        name: how reports and ``--activations`` name it.
        value: ``value(z)`` → σ(z) on NumPy arrays; or ``value(z, xp)`` written once against an
            array namespace, run with NumPy, torch and jax (``bpcheck.user.namespace``), which
            stands for ``torch=`` and ``jax=``.
        derivative: ``derivative(z, a)`` → σ′(z), with a = value(z).
        torch: the same function on torch tensors.
        jax: the same function on jax arrays.
        derivative_bound: a bound on |σ′| where the networks draw z (|z| ≲ 10), for the
            rounding allowance.
        kinks: the z where σ′ jumps; the random networks keep away from them.
        at_kinks: the σ′ your derivative gives exactly at each kink (checked there, beside
            torch's and jax's conventions).
        like: a known activation (``"elu"``): its torch and jax forwards, kinks and bound
            (``bpcheck.user.known``) stand for yours."""

    kind: ClassVar[str] = "activation"
    name: str
    value: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray, np.ndarray], np.ndarray]
    torch: Callable | None = None  # None: from value(z, xp), or from like=
    jax: Callable | None = None
    derivative_bound: float | None = None  # None: like='s, else 2.0
    kinks: tuple[float, ...] = ()
    #: σ′ your derivative returns exactly at each kink (your convention there, e.g. relu′(0) = 0)
    at_kinks: tuple[float, ...] | None = None
    #: a known activation (``bpcheck.user.known``) whose torch and jax forwards check yours
    like: str | None = None

    def __post_init__(self) -> None:
        # one value (bpcheck.user.namespace): value(z, xp), or like='elu', stands for torch= and jax=
        derived = activation_fields(self.name, self.value, self.torch, self.jax, self.like)
        for part, value in derived.items():
            given = {"kinks": self.kinks, "derivative_bound": self.derivative_bound}.get(part)
            if given in (None, ()):  # like='s kinks and bound, unless you gave yours
                object.__setattr__(self, part, value)
        if self.derivative_bound is None:
            object.__setattr__(self, "derivative_bound", 2.0)
        _check_fields(self, PARTS["activation"])
        bound = self.derivative_bound
        if not (is_real(bound) and math.isfinite(bound) and bound > 0):
            raise ValueError(f"derivative_bound={bound!r} must be a finite number > 0")
        kinks = self.kinks
        if not (isinstance(kinks, tuple | list) and all(is_real(k) and math.isfinite(k) for k in kinks)):
            raise ValueError(f"kinks={kinks!r} must be a tuple of finite numbers")
        object.__setattr__(self, "kinks", tuple(float(k) for k in kinks))
        if self.at_kinks is not None:
            at = self.at_kinks
            if not (isinstance(at, tuple | list) and len(at) == len(self.kinks)
                    and all(is_real(v) and math.isfinite(v) for v in at)):
                raise ValueError(f"at_kinks={at!r} must give one finite σ′ per kink {self.kinks}")
            object.__setattr__(self, "at_kinks", tuple(float(v) for v in at))

    def record(self) -> ActivationRecord:
        """What the vocabulary knows of it."""
        return ActivationRecord(self.name, derivative_bound=self.derivative_bound, kinks=self.kinks)

    def entries(self) -> dict[str, object]:
        """What it puts in each table of ``REGISTRY``, its callables guarded (``_entries``)."""
        return _entries(self)


@dataclass(frozen=True)
class UserLoss:
    """A loss of yours, checked inside random networks (``check``, ``bpcheck verify``).

    Args:
        name: how reports and ``--loss`` name it.
        per_sample: ``per_sample(p, y)`` → one value per sample, p and y outputs × samples
            (sum over axis −2, the outputs); or ``per_sample(p, y, xp)`` written once against
            an array namespace, run with NumPy, torch and jax (``bpcheck.user.namespace``), which
            stands for ``torch=`` and ``jax=``.
        gradient: ``gradient(p, y)`` → ∂ℓ_n/∂p, shaped like p.
        torch: ``torch(p, y)`` on samples × outputs tensors, one value per sample.
        jax: ``jax(p, y)`` on arrays laid out as per_sample's, one value per sample.
        targets: ``"values"``; ``"probabilities"`` (each in [0, 1]); ``"distributions"`` (in
            [0, 1], each sample's summing to one: a softmax cross-entropy whose gradient is
            p − y needs them); ``"one_hot"`` (shaped like p); or ``"labels"``, (N,) integer
            classes: p may then carry leading dimensions (finite differences batch copies), so
            index it as ``p[..., labels, np.arange(N)]``.
        layout: ``"outputs_by_samples"``, or ``"samples_by_outputs"`` where your NumPy and jax
            callables take samples × outputs arrays (sum over axis −1), as torch's does.
        batch: None, or ``"sum"``/``"mean"`` where your callables return one scalar for the
            batch and ``gradient`` that scalar's gradient (``bpcheck.user.loss_entries``).
        on_probabilities: p is a probability (your loss takes log p or log(1 − p), unclipped),
            so the networks end in sigmoid or softmax, as for the built-in bce.
        like: one of bpcheck's losses (``"mse"``): its torch and jax forwards, targets and
            on_probabilities stand for yours."""

    kind: ClassVar[str] = "loss"
    name: str
    per_sample: Callable[[np.ndarray, np.ndarray], np.ndarray]
    gradient: Callable[[np.ndarray, np.ndarray], np.ndarray]
    torch: Callable | None = None  # None: from per_sample(p, y, xp), or from like=
    jax: Callable | None = None
    targets: str = "values"
    layout: str = "outputs_by_samples"
    batch: str | None = None  # "sum" or "mean": the callables return one scalar for the batch
    on_probabilities: bool = False  # p in (0, 1): the networks end in sigmoid or softmax
    #: one of bpcheck's losses (``bpcheck.user.known``) whose torch and jax forwards check yours
    like: str | None = None

    def __post_init__(self) -> None:
        if self.batch not in (None, "sum", "mean"):
            raise ValueError(f"batch={self.batch!r} is unknown; expected None, 'sum' or 'mean'")
        one_of(self.layout, LOSS_LAYOUTS, "layout")
        # one value (bpcheck.user.namespace): per_sample(p, y, xp), or like='mse', stands for torch=, jax=
        for part, value in loss_fields(self.name, self.per_sample, self.torch, self.jax, self.like,
                                       self.layout, self.batch, self.targets).items():
            object.__setattr__(self, part, value)
        _check_fields(self, PARTS["loss"])
        if not isinstance(self.on_probabilities, bool):
            raise TypeError(f"on_probabilities={self.on_probabilities!r} must be True or False")
        one_of(self.targets, USER_TARGETS, "targets")

    def record(self) -> LossRecord:
        """What the vocabulary knows of it."""
        if not self.on_probabilities:
            return LossRecord(self.name, self.targets)
        return LossRecord(self.name, self.targets, probability_outputs=PROBABILITY_OUTPUTS,
                          divides_by_variance=True, condition=lambda z, p: clamping(p))

    def entries(self) -> dict[str, object]:
        """What it puts in each table of ``REGISTRY``, its callables guarded (``_entries``; the
        jax witness computes a loss it does not know unpadded, its padding behaviour unknown)."""
        return _entries(self)


@functools.cache
def _entries(rule: UserActivation | UserLoss) -> dict[str, object]:
    """A user rule's entry for each table of ``REGISTRY``, built once per rule: the same
    objects each time it is registered, so the jax witness reuses its compilations. An
    activation's torch and jax witnesses are anchored to your value and derivative where those
    are theirs up to a correct formula's rounding (``bpcheck.user.precision``)."""
    rule = guarded(rule)
    if isinstance(rule, UserActivation):  # the witnesses take your σ and σ′ up to precision
        scale = precision.lazy_scale(rule)
        torch_forward = precision.anchored_torch(rule, scale)
        jax_forward = precision.anchored_jax(rule, scale)
        return {"record": rule.record(),
                "manual": lambda _: Activation(rule.name, rule.value, rule.derivative),
                "torch": lambda _: torch_forward, "jax": lambda _: lambda z, mask: jax_forward(z),
                "numeric": lambda _: rule.value}
    from bpcheck.user.loss_entries import loss_entries  # torch and jax: not loaded with this module

    return loss_entries(rule)


def _check_fields(rule: UserActivation | UserLoss, parts: tuple[str, ...]) -> None:
    """A name the spec vocabulary can hold, and a callable for every part."""
    if not isinstance(rule.name, str) or not rule.name or set(rule.name) & set(":,"):
        raise ValueError(f"name={rule.name!r} must be a non-empty str without ':' or ','")
    if rule.name in BUILT_IN[rule.kind]:
        raise ValueError(f"name={rule.name!r} is a built-in {rule.kind}; choose another")
    for part in parts:
        if not callable(getattr(rule, part)):
            raise TypeError(f"{part}={getattr(rule, part)!r} must be callable")


def load_user_rule(target: str):
    """The UserRule, UserActivation, UserLoss or UserLayer that ``target`` names.

    Args:
        target: ``"module:name"``, the module importable or a .py file's path
            (``"my_net.py:rule"``), as ``bpcheck verify`` takes it."""
    module_name, colon, attribute = target.rpartition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"expected MODULE:NAME (e.g. my_rules:swish), got {target!r}")
    module = _import(module_name)
    if not hasattr(module, attribute):
        raise ValueError(f"{module_name} has no attribute {attribute!r}")
    rule = getattr(module, attribute)
    from bpcheck.user.layer import UserLayer
    from bpcheck.user.rule import UserRule  # it builds on this module
    if not isinstance(rule, UserActivation | UserLoss | UserRule | UserLayer):
        raise TypeError(f"{target} is {type(rule).__name__} {rule!r:.80}; expected a UserRule, "
                        "UserActivation, UserLoss or UserLayer")
    return rule


def _import(module_name: str) -> ModuleType:
    """The module a name or a .py path names; any failure is an ImportError that says why."""
    path = Path(module_name)
    if path.suffix == ".py":
        if not path.is_file():
            raise ImportError(f"could not import {module_name}: no such file")
        directory = str(path.parent.resolve())
        if directory not in sys.path:
            sys.path.insert(0, directory)
        name = path.stem
    else:
        if str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        name = module_name
    try:
        module = importlib.import_module(name)
    except (Exception, SystemExit) as error:
        raise ImportError(f"could not import {module_name}: {type(error).__name__}: {error}") from error
    found = Path(getattr(module, "__file__", None) or "")
    if path.suffix == ".py" and found.resolve() != path.resolve():
        raise ImportError(f"could not import {module_name}: a module named {name!r} is already "
                          f"imported from {found}")
    return module


def verify(rule: UserActivation | UserLoss, max_examples: int = 200, seed: int = 0,
           observe: Callable[[Problem], None] | None = None) -> Verdict:
    """Property-check networks that use ``rule`` against every witness (the lower-level
    ``check``: a Verdict, not a report).

    Args:
        rule: a UserActivation or UserLoss.
        max_examples: the most random networks to try.
        seed: the same seed draws the same networks.
        observe: called with each network's Problem before it is checked.

    Returns:
        A Verdict: ``passed``; on failure ``failure``, the shrunk minimal network Hypothesis
        ends with; where your code raised, ``raised``, ``raised_on`` (that network) and
        ``part`` (which of your callables)."""
    # up to 3 hidden layers: enough to put the rule in hidden and output positions, and each
    # depth costs the jax witness a compilation for the newly registered rule
    from bpcheck.mlp.search import hunt  # Hypothesis, likewise
    from bpcheck.mlp.strategies import problems, specs
    from bpcheck.user.registry import REGISTRY  # the witnesses, torch and jax: only for a check

    shape = {"max_hidden_layers": 3}
    strategy = (specs(include=rule.name, **shape) if isinstance(rule, UserActivation)
                else specs(loss=rule.name, **shape))
    with REGISTRY.scoped(rule):
        verdict = hunt(RULES["derived"], problems(strategy), max_examples, seed, keep_errors=True,
                       observe=observe)
    verdict.rule = rule.name
    return verdict
