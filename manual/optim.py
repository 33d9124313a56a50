r"""Hand-derived optimizers: pure update rules θ, g, state → θ′, state′, one record per name.

An ``Optimizer`` record holds all a name is: its buffers, its hyperparameters (``Setting``:
torch's name and default, the values it may take, and optax's default or formula where the
frameworks differ — a convention) and its per-array update. ``bind(**hp)`` checks the
hyperparameters once and gives a ``Bound`` optimizer: ``init(params)`` gives the state,
``step(params, grads, state)`` new parameters and a new state (the inputs are never modified,
the state is never shared). The state holds the step count t (the number of steps taken) and
one buffer per parameter for each moment the rule keeps. Scalars (bias corrections, effective
rates) are computed in Python floats and rounded once to the array dtype, as the frameworks do.

Notation: g is the gradient after weight decay (coupled L2: g ← g + λθ), η the learning rate,
t the step being taken (1 for the first).
"""

from __future__ import annotations

import numpy as np

from manual.optim_record import (
    FLAG,
    POSITIVE,
    UNIT_INTERVAL,
    Bound,
    Hyper,
    Optimizer,
    Setting,
    check_state,
)
from manual.spec import Params

__all__ = ["OPTIMIZERS", "Bound", "Optimizer", "Setting", "check_state", "hyperparameters", "init",
           "optimizer", "register", "step"]

OPTIMIZERS: dict[str, Optimizer] = {}


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


def _nesterov(hp: Hyper) -> str | None:
    if hp["nesterov"] and (hp["momentum"] <= 0 or hp["dampening"] != 0):
        return "nesterov needs momentum > 0 and dampening = 0"
    return None


_LR, _DECAY, _EPS_ROOT = Setting(1e-3), Setting(0.0), Setting(0.0)
_OUTSIDE = ("outside", "inside")  # ε outside the square root (torch) or inside (optax)
_ADAM = {"lr": _LR, "beta1": Setting(0.9, UNIT_INTERVAL), "beta2": Setting(0.999, UNIT_INTERVAL),
         "eps": Setting(1e-8, POSITIVE), "eps_root": _EPS_ROOT}
register(Optimizer("sgd", ("momentum",), {
    "lr": _LR, "momentum": Setting(0.0, UNIT_INTERVAL), "dampening": Setting(0.0, UNIT_INTERVAL),
    "nesterov": Setting(False, FLAG), "weight_decay": _DECAY}, sgd, requires=_nesterov))
register(Optimizer("adagrad", ("sum",), {
    "lr": Setting(1e-2), "lr_decay": Setting(0.0), "weight_decay": _DECAY,
    "initial_accumulator_value": Setting(0.0, optax=0.1), "eps": Setting(1e-10, POSITIVE, optax=1e-7),
    "eps_placement": Setting("outside", _OUTSIDE, optax="inside")}, adagrad,
    lambda hp, buffer: float(hp["initial_accumulator_value"])))
register(Optimizer("rmsprop", ("square_avg", "grad_avg", "momentum"), {
    "lr": Setting(1e-2), "alpha": Setting(0.99, UNIT_INTERVAL, optax=0.9), "eps": Setting(1e-8, POSITIVE),
    "weight_decay": _DECAY, "momentum": Setting(0.0, UNIT_INTERVAL), "centered": Setting(False, FLAG),
    "eps_placement": Setting("outside", _OUTSIDE, optax="inside")}, rmsprop))
register(Optimizer("adam", ("exp_avg", "exp_avg_sq"), {**_ADAM, "weight_decay": _DECAY}, adam))
register(Optimizer("adamw", ("exp_avg", "exp_avg_sq"),
                   {**_ADAM, "weight_decay": Setting(1e-2, optax=1e-4)}, adamw))
register(Optimizer("adamax", ("exp_avg", "exp_inf"), {
    "lr": Setting(2e-3), "beta1": Setting(0.9, UNIT_INTERVAL), "beta2": Setting(0.999, UNIT_INTERVAL),
    "eps": Setting(1e-8, POSITIVE), "weight_decay": _DECAY}, adamax))


def optimizer(name: str) -> Optimizer:
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; registered: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]


def hyperparameters(name: str, **given: float | bool | str) -> Hyper:
    """The optimizer's defaults overridden by ``given``, each checked (unknown names refused)."""
    return optimizer(name).bind(**given).hp


def init(name: str, params: Params, **given: float | bool | str) -> dict:
    """State before the first step (``Bound.init``)."""
    return optimizer(name).bind(**given).init(params)


def step(name: str, params: Params, grads: Params, state: dict,
         **given: float | bool | str) -> tuple[Params, dict]:
    """One update of every parameter (``Bound.step``); returns new parameters and a new state."""
    return optimizer(name).bind(**given).step(params, grads, state)
