"""What an optimizer record holds (``Setting``, ``Optimizer``), an optimizer bound to checked
hyperparameters (``Bound``), and the checks of the parameters, gradients and state it steps.
The rules themselves, one record each, are in ``manual.optim``."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from manual.spec import Params

Buffers = dict[str, np.ndarray]  # one parameter's moments, by buffer name
Hyper = dict[str, float | bool | str]

#: Domains of numeric settings, as the error messages say them.
NON_NEGATIVE, UNIT_INTERVAL, POSITIVE = "≥ 0 and finite", "in [0, 1)", "> 0 and finite"
FLAG = "True or False"
#: ``Setting.optax`` where optax agrees with torch.
SAME = None


@dataclass(frozen=True)
class Setting:
    """One hyperparameter: torch's default, the values it may take (a domain above, or a tuple
    of choices: a formula switch), and optax's default or formula where it differs."""

    default: float | bool | str
    domain: str | tuple[str, ...] = NON_NEGATIVE
    optax: float | str | None = SAME

    @property
    def switch(self) -> bool:
        """Whether it chooses between formulas (its domain is a tuple of choices)."""
        return isinstance(self.domain, tuple)

    def checked(self, where: str, value: object) -> float | bool | str:
        """``value`` if the setting may take it (numbers as float), else ValueError naming it."""
        if self.switch:
            if value not in self.domain:
                raise ValueError(f"{where} must be one of {self.domain}, got {value!r}")
            return value
        if self.domain == FLAG:
            if not isinstance(value, bool | np.bool_):
                raise ValueError(f"{where} must be True or False, got {value!r}")
            return bool(value)
        if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
            raise ValueError(f"{where} must be a number, got {value!r}")
        number = float(value)
        if not (math.isfinite(number) and number >= 0 and (self.domain != UNIT_INTERVAL or number < 1)
                and (self.domain != POSITIVE or number > 0)):
            raise ValueError(f"{where} must be {self.domain}, got {value!r}")
        return number


@dataclass(frozen=True)
class Optimizer:
    """A registered rule: its buffers, settings (torch's names and defaults), per-array update,
    each buffer's initial value, and what the settings require of each other (a message, or
    None where they are consistent)."""

    name: str
    buffers: tuple[str, ...]
    settings: Mapping[str, Setting]
    update: Callable[[np.ndarray, np.ndarray, Buffers, int, Hyper], tuple[np.ndarray, Buffers]]
    initial_value: Callable[[Hyper, str], float] = lambda hp, buffer: 0.0
    requires: Callable[[Hyper], str | None] = lambda hp: None

    @property
    def defaults(self) -> Hyper:
        return {key: setting.default for key, setting in self.settings.items()}

    @property
    def conventions(self) -> dict[str, tuple[object, object]]:
        """Where torch and optax differ: setting → (torch's, optax's), formula switches first."""
        differ = [(key, s) for key, s in self.settings.items() if s.optax is not SAME]
        return {key: (s.default, s.optax)
                for key, s in sorted(differ, key=lambda item: not item[1].switch)}

    def in_convention(self, framework: str) -> Hyper:
        """The formula switches (choice settings) set as ``framework`` ("torch" or "optax") has them."""
        return {key: s.default if framework == "torch" else s.optax
                for key, s in self.settings.items() if s.switch and s.optax is not SAME}

    def bind(self, **given: float | bool | str) -> Bound:
        """The optimizer with its defaults overridden by ``given``, each checked once."""
        unknown = sorted(set(given) - set(self.settings))
        if unknown:
            raise ValueError(f"{self.name}: unknown hyperparameter(s) {', '.join(unknown)}; "
                             f"expected some of {', '.join(self.settings)}")
        hp = {key: setting.checked(f"{self.name}: {key}", given.get(key, setting.default))
              for key, setting in self.settings.items()}
        if (problem := self.requires(hp)) is not None:
            raise ValueError(f"{self.name}: {problem}")
        return Bound(self, hp)


@dataclass(frozen=True)
class Bound:
    """An optimizer with checked hyperparameters."""

    optimizer: Optimizer
    hp: Hyper = field(default_factory=dict)

    def init(self, params: Params) -> dict:
        """State before the first step: t = 0 and each buffer filled with its initial value."""
        _check_params(params)
        rule = self.optimizer
        return {"t": 0, "buffers": {buffer: {key: np.full_like(value, rule.initial_value(self.hp, buffer))
                                             for key, value in params.items()}
                                    for buffer in rule.buffers}}

    def step(self, params: Params, grads: Params, state: dict) -> tuple[Params, dict]:
        """One update of every parameter; returns new parameters and a new state."""
        rule = self.optimizer
        check_state(rule, params, grads, state)
        t = int(state["t"]) + 1
        new_params, new_buffers = {}, {buffer: {} for buffer in rule.buffers}
        for key, theta in params.items():
            theta = np.asarray(theta)
            g = np.asarray(grads[key], dtype=theta.dtype)
            own = {buffer: state["buffers"][buffer][key] for buffer in rule.buffers}
            new_theta, updated = rule.update(theta, g, own, t, self.hp)
            new_params[key] = np.asarray(new_theta, dtype=theta.dtype)
            for buffer in rule.buffers:  # buffers the rule did not touch are copied, never shared
                new_buffers[buffer][key] = np.array(updated.get(buffer, own[buffer]), dtype=theta.dtype)
        return new_params, {"t": t, "buffers": new_buffers}


def _check_params(params: Params) -> None:
    """Refuse parameters an optimizer cannot update: not a dict, not real floating point (an
    integer array would never move), or not finite."""
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
    for key, value in params.items():
        dtype = np.asarray(value).dtype
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(f"params[{key!r}] has dtype {dtype}; expected real floating point "
                            "(float32 or float64): an update cannot move it")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"params[{key!r}] contains NaN or Inf; expected finite values")


def check_state(rule: Optimizer, params: Params, grads: Params, state: dict) -> None:
    """Refuse parameters that cannot be updated (``_check_params``), and state or gradients that do
    not belong to them (keys, shapes, dtypes)."""
    name = rule.name
    _check_params(params)
    if not isinstance(grads, Mapping) or set(grads) != set(params):
        raise ValueError(f"grads must have the parameters' keys {sorted(params)}, got "
                         f"{sorted(grads) if isinstance(grads, Mapping) else type(grads).__name__}")
    for key, value in params.items():
        if np.shape(grads[key]) != np.shape(value):
            raise ValueError(f"grads[{key!r}] must have shape {np.shape(value)}, "
                             f"got {np.shape(grads[key])}")
        dtype = np.asarray(grads[key]).dtype
        if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
            raise TypeError(f"grads[{key!r}] has dtype {dtype}; expected real numbers")
        if not np.all(np.isfinite(grads[key])):
            raise ValueError(f"grads[{key!r}] contains NaN or Inf")
    if not isinstance(state, dict) or set(state) != {"t", "buffers"}:
        raise ValueError(f"state must come from init({name!r}, params): a dict with 't' and 'buffers'")
    if not isinstance(state["t"], int | np.integer) or state["t"] < 0:
        raise ValueError(f"state['t'] must be a step count ≥ 0, got {state['t']!r}")
    if set(state["buffers"]) != set(rule.buffers):
        raise ValueError(f"state belongs to another optimizer: buffers {sorted(state['buffers'])}, "
                         f"{name} keeps {sorted(rule.buffers)}")
    for buffer, arrays in state["buffers"].items():
        if set(arrays) != set(params):
            missing, extra = sorted(set(params) - set(arrays)), sorted(set(arrays) - set(params))
            raise ValueError(f"state[{buffer!r}] is for other parameters: missing {missing}, "
                             f"extra {extra}")
        for key, value in params.items():
            if arrays[key].shape != np.shape(value):
                raise ValueError(f"state[{buffer!r}][{key!r}] has shape {arrays[key].shape}, "
                                 f"the parameter has {np.shape(value)}")
