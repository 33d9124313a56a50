r"""Hand-derived optimizers: pure update rules θ, g, state → θ′, state′, one registry.

``init(name, params, **hp)`` gives the state; ``step(name, params, grads, state, **hp)`` returns
new parameters and a new state (the inputs are never modified, the state is never shared). The
state holds the step count t (the number of steps taken) and one buffer per parameter for each
moment the rule keeps. Hyperparameters use torch's names; every place where torch and optax
define a same-named optimizer differently is a hyperparameter too, listed in ``CONVENTIONS``
with each framework's choice and default. Scalars (bias corrections, effective rates) are
computed in Python floats and rounded once to the array dtype, as the frameworks do.

Notation: g is the gradient after weight decay (coupled L2: g ← g + λθ), η the learning rate,
t the step being taken (1 for the first).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from manual.spec import Params

Buffers = dict[str, np.ndarray]  # one parameter's moments, by buffer name
Hyper = dict[str, float | bool | str]


@dataclass(frozen=True)
class Optimizer:
    """A registered rule: its buffers, hyperparameters (torch's defaults) and per-array update."""

    name: str
    buffers: tuple[str, ...]
    defaults: Mapping[str, float | bool | str]
    update: Callable[[np.ndarray, np.ndarray, Buffers, int, Hyper], tuple[np.ndarray, Buffers]]
    initial_value: Callable[[Hyper, str], float] = lambda hp, buffer: 0.0


OPTIMIZERS: dict[str, Optimizer] = {}

#: Where the frameworks differ for a same-named optimizer: hyperparameter → (torch, optax).
#: Rows marked "default" are different default values; the others are different formulas.
CONVENTIONS: dict[str, dict[str, tuple[object, object]]] = {
    "sgd": {},
    "adagrad": {"eps_placement": ("outside", "inside"), "initial_accumulator_value": (0.0, 0.1),
                "eps": (1e-10, 1e-7)},
    "rmsprop": {"eps_placement": ("outside", "inside"), "alpha": (0.99, 0.9)},
    "adam": {},
    "adamw": {"weight_decay": (1e-2, 1e-4)},
    "adamax": {},
}


def register(optimizer: Optimizer) -> Optimizer:
    OPTIMIZERS[optimizer.name] = optimizer
    return optimizer


def _scalar(value: float, like: np.ndarray) -> np.generic:
    """A Python-float coefficient rounded once to the array's dtype."""
    return like.dtype.type(value)


def _coupled_decay(theta: np.ndarray, g: np.ndarray, hp: Hyper) -> np.ndarray:
    """g ← g + λθ (L2 folded into the gradient; λ = weight_decay)."""
    return g + _scalar(hp["weight_decay"], g) * theta if hp["weight_decay"] else g


def sgd(theta, g, buf, t, hp):
    r"""SGD with momentum μ, dampening d, Nesterov, weight decay λ:

    g ← g + λθ;  b_1 = g (no dampening on the first step), b_t = μ b_{t−1} + (1 − d) g;
    step direction u = g + μ b_t (Nesterov) or b_t; θ ← θ − η u (u = g without momentum).
    (optax's trace starts from b_0 = 0 and has no dampening: with d = 0 the two agree.)
    """
    g = _coupled_decay(theta, g, hp)
    mu = hp["momentum"]
    if not mu:
        return theta - _scalar(hp["lr"], g) * g, buf
    if t == 1:
        b = g.copy()
    else:
        b = _scalar(mu, g) * buf["momentum"] + _scalar(1 - hp["dampening"], g) * g
    u = g + _scalar(mu, g) * b if hp["nesterov"] else b
    return theta - _scalar(hp["lr"], g) * u, {"momentum": b}


def adagrad(theta, g, buf, t, hp):
    r"""Adagrad: g ← g + λθ;  s_t = s_{t−1} + g²  (s_0 = initial_accumulator_value);
    η_t = η / (1 + (t − 1)·lr_decay);
    θ ← θ − η_t g / (√s_t + ε)  (eps_placement="outside", torch)
    or θ ← θ − η_t g / √(s_t + ε), and 0 where s_t = 0  ("inside", optax).
    """
    g = _coupled_decay(theta, g, hp)
    s = buf["sum"] + g * g
    rate = _scalar(hp["lr"] / (1 + (t - 1) * hp["lr_decay"]), g)
    eps = _scalar(hp["eps"], g)
    if hp["eps_placement"] == "outside":
        scaled = g / (np.sqrt(s) + eps)
    else:
        scaled = np.zeros_like(g)
        np.divide(g, np.sqrt(s + eps), out=scaled, where=s > 0)
    return theta - rate * scaled, {"sum": s}


def rmsprop(theta, g, buf, t, hp):
    r"""RMSProp: g ← g + λθ;  v_t = α v_{t−1} + (1 − α) g²;  centered: m_t = α m_{t−1} + (1 − α) g
    and v̄ = v_t − m_t², else v̄ = v_t;  d = √v̄ + ε ("outside", torch) or √(v̄ + ε) ("inside", optax);
    without momentum θ ← θ − η g/d; with momentum μ: b_t = μ b_{t−1} + g/d, θ ← θ − η b_t.
    (v̄ ≥ α^t v_t > 0 in exact arithmetic; it is clamped at 0 against rounding.)
    """
    g = _coupled_decay(theta, g, hp)
    alpha, keep = _scalar(hp["alpha"], g), _scalar(1 - hp["alpha"], g)
    v = alpha * buf["square_avg"] + keep * (g * g)
    m = alpha * buf["grad_avg"] + keep * g if hp["centered"] else buf["grad_avg"]
    variance = np.maximum(v - m * m, 0) if hp["centered"] else v
    eps = _scalar(hp["eps"], g)
    d = np.sqrt(variance) + eps if hp["eps_placement"] == "outside" else np.sqrt(variance + eps)
    new = {"square_avg": v, "grad_avg": m, "momentum": buf["momentum"]}
    if hp["momentum"]:
        new["momentum"] = _scalar(hp["momentum"], g) * buf["momentum"] + g / d
        return theta - _scalar(hp["lr"], g) * new["momentum"], new
    return theta - _scalar(hp["lr"], g) * (g / d), new


def _adam_direction(g, buf, t, hp):
    r"""m_t = β₁m + (1 − β₁)g, v_t = β₂v + (1 − β₂)g², u = m̂/(√(v̂ + ε_root) + ε) with
    m̂ = m_t/(1 − β₁^t), v̂ = v_t/(1 − β₂^t)."""
    b1, b2 = hp["beta1"], hp["beta2"]
    m = _scalar(b1, g) * buf["exp_avg"] + _scalar(1 - b1, g) * g
    v = _scalar(b2, g) * buf["exp_avg_sq"] + _scalar(1 - b2, g) * (g * g)
    m_hat, v_hat = m / _scalar(1 - b1**t, g), v / _scalar(1 - b2**t, g)
    u = m_hat / (np.sqrt(v_hat + _scalar(hp["eps_root"], g)) + _scalar(hp["eps"], g))
    return u, {"exp_avg": m, "exp_avg_sq": v}


def adam(theta, g, buf, t, hp):
    r"""Adam (coupled L2): g ← g + λθ;  θ ← θ − η m̂/(√(v̂ + ε_root) + ε)."""
    u, new = _adam_direction(_coupled_decay(theta, g, hp), buf, t, hp)
    return theta - _scalar(hp["lr"], g) * u, new


def adamw(theta, g, buf, t, hp):
    r"""AdamW (decoupled decay): θ ← θ − η (m̂/(√(v̂ + ε_root) + ε) + λθ), moments of the raw g."""
    u, new = _adam_direction(g, buf, t, hp)
    return theta - _scalar(hp["lr"], g) * (u + _scalar(hp["weight_decay"], g) * theta), new


def adamax(theta, g, buf, t, hp):
    r"""Adamax: g ← g + λθ;  m_t = β₁m + (1 − β₁)g;  u_t = max(β₂u, |g| + ε);
    θ ← θ − (η/(1 − β₁^t)) m_t/u_t."""
    g = _coupled_decay(theta, g, hp)
    b1 = hp["beta1"]
    m = _scalar(b1, g) * buf["exp_avg"] + _scalar(1 - b1, g) * g
    u = np.maximum(_scalar(hp["beta2"], g) * buf["exp_inf"], np.abs(g) + _scalar(hp["eps"], g))
    return theta - _scalar(hp["lr"] / (1 - b1**t), g) * (m / u), {"exp_avg": m, "exp_inf": u}


_ADAM = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "eps_root": 0.0}
register(Optimizer("sgd", ("momentum",), {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0,
                                          "nesterov": False, "weight_decay": 0.0}, sgd))
register(Optimizer("adagrad", ("sum",), {"lr": 1e-2, "lr_decay": 0.0, "weight_decay": 0.0,
                                         "initial_accumulator_value": 0.0, "eps": 1e-10,
                                         "eps_placement": "outside"}, adagrad,
                   lambda hp, buffer: float(hp["initial_accumulator_value"])))
register(Optimizer("rmsprop", ("square_avg", "grad_avg", "momentum"),
                   {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0,
                    "centered": False, "eps_placement": "outside"}, rmsprop))
register(Optimizer("adam", ("exp_avg", "exp_avg_sq"), {**_ADAM, "weight_decay": 0.0}, adam))
register(Optimizer("adamw", ("exp_avg", "exp_avg_sq"), {**_ADAM, "weight_decay": 1e-2}, adamw))
register(Optimizer("adamax", ("exp_avg", "exp_inf"),
                   {"lr": 2e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
                   adamax))

#: Allowed values of the choice-valued hyperparameters.
CHOICES = {"eps_placement": ("outside", "inside")}
#: Decay rates lie in [0, 1); ε must be > 0 (it keeps a zero gradient's step finite); the rest ≥ 0.
UNIT_INTERVAL = ("momentum", "dampening", "alpha", "beta1", "beta2")
POSITIVE = ("eps",)


def optimizer(name: str) -> Optimizer:
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; registered: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]


def hyperparameters(name: str, **given: float | bool | str) -> Hyper:
    """The optimizer's defaults overridden by ``given``, each checked (unknown names refused)."""
    rule = optimizer(name)
    unknown = sorted(set(given) - set(rule.defaults))
    if unknown:
        raise ValueError(f"{name}: unknown hyperparameter(s) {', '.join(unknown)}; "
                         f"expected some of {', '.join(rule.defaults)}")
    hp: Hyper = {**rule.defaults, **given}
    for key, value in hp.items():
        default = rule.defaults[key]
        if isinstance(default, str):
            if value not in CHOICES[key]:
                raise ValueError(f"{name}: {key} must be one of {CHOICES[key]}, got {value!r}")
        elif isinstance(default, bool):
            if not isinstance(value, bool | np.bool_):
                raise ValueError(f"{name}: {key} must be True or False, got {value!r}")
        else:
            if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
                raise ValueError(f"{name}: {key} must be a number, got {value!r}")
            value = float(value)
            if (not math.isfinite(value) or value < 0 or (key in UNIT_INTERVAL and value >= 1)
                    or (key in POSITIVE and value == 0)):
                interval = ("in [0, 1)" if key in UNIT_INTERVAL else "> 0 and finite" if key in POSITIVE
                            else "≥ 0 and finite")
                raise ValueError(f"{name}: {key} must be {interval}, got {value!r}")
            hp[key] = value
    if name == "sgd" and hp["nesterov"] and (hp["momentum"] <= 0 or hp["dampening"] != 0):
        raise ValueError("sgd: nesterov needs momentum > 0 and dampening = 0")
    return hp


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


def init(name: str, params: Params, **given: float | bool | str) -> dict:
    """State before the first step: t = 0 and each buffer filled with its initial value."""
    rule, hp = optimizer(name), hyperparameters(name, **given)
    _check_params(params)
    return {"t": 0, "buffers": {buffer: {key: np.full_like(value, rule.initial_value(hp, buffer))
                                         for key, value in params.items()}
                                for buffer in rule.buffers}}


def check_state(name: str, params: Params, grads: Params, state: dict) -> None:
    """Refuse parameters that cannot be updated (``_check_params``), and state or gradients that do
    not belong to them (keys, shapes, dtypes)."""
    rule = optimizer(name)
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


def step(name: str, params: Params, grads: Params, state: dict,
         **given: float | bool | str) -> tuple[Params, dict]:
    """One update of every parameter; returns new parameters and a new state."""
    rule, hp = optimizer(name), hyperparameters(name, **given)
    check_state(name, params, grads, state)
    t = int(state["t"]) + 1
    new_params, new_buffers = {}, {buffer: {} for buffer in rule.buffers}
    for key, theta in params.items():
        theta = np.asarray(theta)
        g = np.asarray(grads[key], dtype=theta.dtype)
        own = {buffer: state["buffers"][buffer][key] for buffer in rule.buffers}
        new_theta, updated = rule.update(theta, g, own, t, hp)
        new_params[key] = np.asarray(new_theta, dtype=theta.dtype)
        for buffer in rule.buffers:  # buffers the rule did not touch are copied, never shared
            new_buffers[buffer][key] = np.array(updated.get(buffer, own[buffer]), dtype=theta.dtype)
    return new_params, {"t": t, "buffers": new_buffers}
