"""Optimizer witnesses: ``torch.optim`` and ``optax``, driven step by step with given gradients.

Both take hyperparameters by the same plain names as the manual rules (torch's names plus the
convention switches ``eps_placement`` and ``eps_root``) and map them onto the framework's own
constructor; nothing here computes an update itself. A setting a framework cannot express
raises ``NotExpressible``. Coupled weight decay in optax is ``add_decayed_weights`` before the
optimizer (g + λθ), as torch's ``weight_decay``; Adagrad's ``lr_decay`` is an optax schedule.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax

# optax computes in float64 only in jax's x64 mode: switched on here, by the module that runs
# optax, not left to whoever imported reference.jax_ref (or set JAX_ENABLE_X64) first
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import torch  # noqa: E402

from manual.spec import Params  # noqa: E402
from reference.flat import flattened  # noqa: E402
from reference.jax_ref import COMPILE_OPTIONS  # noqa: E402

if jnp.asarray(1.0).dtype != jnp.float64:  # the switch did not take: fail loudly, not in float32
    raise RuntimeError("JAX x64 mode is off: optax's trajectories would be float32")

GradientAt = Callable[[Params, int], Params]  # (parameters now, step t ≥ 1) → gradients


class NotExpressible(ValueError):
    """The framework has no setting for this hyperparameter value."""


#: Settings a framework has one value for, whatever the optimizer: setting → (value, what
#: another value would be).
TORCH_FIXED = {"eps_placement": ("outside", "ε inside the square root"), "eps_root": (0.0, "eps_root")}
#: The same per optimizer for optax.
OPTAX_FIXED = {"sgd": {"dampening": (0.0, "SGD dampening")},
               "adagrad": {"eps_placement": ("inside", "Adagrad's ε outside the square root")}}


def _fixed(framework: str, name: str) -> dict[str, tuple[object, str]]:
    return TORCH_FIXED if framework == "torch" else OPTAX_FIXED.get(name, {})


def fixed(framework: str, name: str) -> dict[str, object]:
    """Settings of optimizer ``name`` that ``framework`` can express with one value only."""
    return {key: value for key, (value, _) in _fixed(framework, name).items()}


def _expressible(framework: str, name: str, hp: dict) -> None:
    for key, (value, what) in _fixed(framework, name).items():
        if key in hp and hp[key] != value:
            raise NotExpressible(f"{framework} cannot express {what}")


def _adam_like(constructor):
    return lambda tensors, hp: constructor(tensors, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]),
                                           eps=hp["eps"], weight_decay=hp["weight_decay"])


#: name → (tensors, hyperparameters) → the torch.optim optimizer.
TORCH = {
    "sgd": lambda tensors, hp: torch.optim.SGD(
        tensors, lr=hp["lr"], momentum=hp["momentum"], dampening=hp["dampening"],
        nesterov=hp["nesterov"], weight_decay=hp["weight_decay"]),
    "adagrad": lambda tensors, hp: torch.optim.Adagrad(
        tensors, lr=hp["lr"], lr_decay=hp["lr_decay"], weight_decay=hp["weight_decay"], eps=hp["eps"],
        initial_accumulator_value=hp["initial_accumulator_value"]),
    "rmsprop": lambda tensors, hp: torch.optim.RMSprop(
        tensors, lr=hp["lr"], alpha=hp["alpha"], eps=hp["eps"], weight_decay=hp["weight_decay"],
        momentum=hp["momentum"], centered=hp["centered"]),
    "adam": _adam_like(torch.optim.Adam),
    "adamw": _adam_like(torch.optim.AdamW),
    "adamax": _adam_like(torch.optim.Adamax),
}


def _off(value):
    """None for a setting of exactly 0 (its part switched off), else the setting."""
    return None if isinstance(value, (int, float)) and value == 0 else value


def _coupled(hp: dict, core: optax.GradientTransformation) -> optax.GradientTransformation:
    """Coupled weight decay, as torch's: g + λθ before the optimizer."""
    decay = hp["weight_decay"]
    return core if _off(decay) is None else optax.chain(optax.add_decayed_weights(decay), core)


#: name → hyperparameters → the optax transformation.
OPTAX = {
    "sgd": lambda hp: _coupled(hp, optax.sgd(hp["lr"], momentum=_off(hp["momentum"]),
                                             nesterov=hp["nesterov"])),
    # count = t − 1: Adagrad's lr_decay as a schedule
    "adagrad": lambda hp: _coupled(hp, optax.adagrad(
        lambda count: hp["lr"] / (1 + count * hp["lr_decay"]),
        initial_accumulator_value=hp["initial_accumulator_value"], eps=hp["eps"])),
    "rmsprop": lambda hp: _coupled(hp, optax.rmsprop(
        hp["lr"], decay=hp["alpha"], eps=hp["eps"], centered=hp["centered"],
        eps_in_sqrt=hp["eps_placement"] == "inside", momentum=_off(hp["momentum"]))),
    "adam": lambda hp: _coupled(hp, optax.adam(hp["lr"], b1=hp["beta1"], b2=hp["beta2"], eps=hp["eps"],
                                               eps_root=hp["eps_root"])),
    "adamw": lambda hp: optax.adamw(hp["lr"], b1=hp["beta1"], b2=hp["beta2"], eps=hp["eps"],
                                    eps_root=hp["eps_root"], weight_decay=hp["weight_decay"]),
    "adamax": lambda hp: _coupled(hp, optax.adamax(hp["lr"], b1=hp["beta1"], b2=hp["beta2"],
                                                   eps=hp["eps"])),
}


def torch_optimizer(name: str, tensors: list[torch.Tensor], hp: dict) -> torch.optim.Optimizer:
    """The torch.optim optimizer for these hyperparameters."""
    if name not in TORCH:
        raise NotExpressible(f"no torch.optim counterpart for {name!r}")
    _expressible("torch", name, hp)
    return TORCH[name](tensors, hp)


def optax_transformation(name: str, hp: dict) -> optax.GradientTransformation:
    """The optax transformation for these hyperparameters."""
    if name not in OPTAX:
        raise NotExpressible(f"no optax counterpart for {name!r}")
    _expressible("optax", name, hp)
    return OPTAX[name](hp)


def torch_trajectory(name: str, params: Params, gradient_at: GradientAt, steps: int,
                     hp: dict) -> list[Params]:
    """Parameters after each of ``steps`` torch.optim steps (float64)."""
    leaves = {key: torch.tensor(np.asarray(value, np.float64), requires_grad=True)
              for key, value in params.items()}
    optimizer = torch_optimizer(name, list(leaves.values()), hp)
    path = []
    for t in range(1, steps + 1):
        now = {key: leaf.detach().numpy().copy() for key, leaf in leaves.items()}
        for key, grad in gradient_at(now, t).items():
            leaves[key].grad = torch.tensor(np.asarray(grad, np.float64))
        optimizer.step()
        path.append({key: leaf.detach().numpy().copy() for key, leaf in leaves.items()})
    return path


def optax_trajectory(name: str, params: Params, gradient_at: GradientAt, steps: int,
                     hp: dict) -> list[Params]:
    """Parameters after each of ``steps`` optax updates (float64).

    Every optimizer here updates entry by entry, so the arrays travel as one vector, zero-padded
    to a power of two, and the non-zero float settings as traced scalars: one XLA program per
    optimizer, switch settings and padded size serves every draw, where running optax op by op
    compiled each of its operations anew for every shape."""
    optax_transformation(name, hp)  # refuses what optax cannot express, before any work
    floats = {key: jnp.float64(value) for key, value in hp.items()
              if type(value) is float and value != 0}
    init, step = _compiled(name, tuple(sorted((key, value) for key, value in hp.items()
                                              if key not in floats)))
    vector, named = flattened(params)
    theta = jax.device_put(vector)  # jnp.asarray would compile a program per shape (jax_stack)
    state = init(floats, theta)
    path = []
    for t in range(1, steps + 1):
        grads = gradient_at(named(theta), t)
        vector = flattened({key: grads[key] for key in params})[0]
        theta, state = step(floats, theta, jax.device_put(vector), state)
        path.append(named(theta))
    return path


@functools.cache
def _compiled(name: str, switches: tuple[tuple[str, object], ...]):
    """(init, step) of optimizer ``name`` compiled for these switch settings; the float
    settings are arguments, so new values reuse the program."""
    def transformation(floats: dict) -> optax.GradientTransformation:
        return OPTAX[name]({**dict(switches), **floats})

    def step(floats, theta, grads, state):
        updates, state = transformation(floats).update(grads, state, theta)
        return optax.apply_updates(theta, updates), state

    def init(floats, theta):
        return transformation(floats).init(theta)

    return jax.jit(init, compiler_options=COMPILE_OPTIONS), jax.jit(step, compiler_options=COMPILE_OPTIONS)


TRAJECTORIES = {"torch": torch_trajectory, "optax": optax_trajectory}
