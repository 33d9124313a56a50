"""Optimizer witnesses: ``torch.optim`` and ``optax``, driven step by step with given gradients.

Both take hyperparameters by the same plain names as the manual rules (torch's names plus the
convention switches ``eps_placement`` and ``eps_root``) and map them onto the framework's own
constructor; nothing here computes an update itself. A setting a framework cannot express
raises ``NotExpressible``. Coupled weight decay in optax is ``add_decayed_weights`` before the
optimizer (g + λθ), as torch's ``weight_decay``; Adagrad's ``lr_decay`` is an optax schedule.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
import optax
import torch

from manual.spec import Params

GradientAt = Callable[[Params, int], Params]  # (parameters now, step t ≥ 1) → gradients


class NotExpressible(ValueError):
    """The framework has no setting for this hyperparameter value."""


def _require(condition: bool, framework: str, what: str) -> None:
    if not condition:
        raise NotExpressible(f"{framework} cannot express {what}")


def torch_optimizer(name: str, tensors: list[torch.Tensor], hp: dict) -> torch.optim.Optimizer:
    """The torch.optim optimizer for these hyperparameters."""
    if "eps_placement" in hp:
        _require(hp["eps_placement"] == "outside", "torch", "ε inside the square root")
    _require(hp.get("eps_root", 0.0) == 0.0, "torch", "eps_root")
    if name == "sgd":
        return torch.optim.SGD(tensors, lr=hp["lr"], momentum=hp["momentum"],
                               dampening=hp["dampening"], nesterov=hp["nesterov"],
                               weight_decay=hp["weight_decay"])
    if name == "adagrad":
        return torch.optim.Adagrad(tensors, lr=hp["lr"], lr_decay=hp["lr_decay"],
                                   weight_decay=hp["weight_decay"], eps=hp["eps"],
                                   initial_accumulator_value=hp["initial_accumulator_value"])
    if name == "rmsprop":
        return torch.optim.RMSprop(tensors, lr=hp["lr"], alpha=hp["alpha"], eps=hp["eps"],
                                   weight_decay=hp["weight_decay"], momentum=hp["momentum"],
                                   centered=hp["centered"])
    adam_like = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adamax": torch.optim.Adamax}
    if name in adam_like:
        return adam_like[name](tensors, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"],
                               weight_decay=hp["weight_decay"])
    raise NotExpressible(f"no torch.optim counterpart for {name!r}")


def optax_transformation(name: str, hp: dict) -> optax.GradientTransformation:
    """The optax transformation for these hyperparameters."""
    lr, decay = hp["lr"], hp.get("weight_decay", 0.0)
    if name == "sgd":
        _require(hp["dampening"] == 0, "optax", "SGD dampening")
        core = optax.sgd(lr, momentum=hp["momentum"] or None, nesterov=hp["nesterov"])
    elif name == "adagrad":
        _require(hp["eps_placement"] == "inside", "optax", "Adagrad's ε outside the square root")
        rate = lambda count: lr / (1 + count * hp["lr_decay"])  # noqa: E731 — count = t − 1
        core = optax.adagrad(rate, initial_accumulator_value=hp["initial_accumulator_value"],
                             eps=hp["eps"])
    elif name == "rmsprop":
        core = optax.rmsprop(lr, decay=hp["alpha"], eps=hp["eps"], centered=hp["centered"],
                             eps_in_sqrt=hp["eps_placement"] == "inside",
                             momentum=hp["momentum"] or None)
    elif name == "adam":
        core = optax.adam(lr, b1=hp["beta1"], b2=hp["beta2"], eps=hp["eps"], eps_root=hp["eps_root"])
    elif name == "adamw":
        return optax.adamw(lr, b1=hp["beta1"], b2=hp["beta2"], eps=hp["eps"],
                           eps_root=hp["eps_root"], weight_decay=decay)
    elif name == "adamax":
        core = optax.adamax(lr, b1=hp["beta1"], b2=hp["beta2"], eps=hp["eps"])
    else:
        raise NotExpressible(f"no optax counterpart for {name!r}")
    return optax.chain(optax.add_decayed_weights(decay), core) if decay else core


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
    """Parameters after each of ``steps`` optax updates (float64)."""
    transformation = optax_transformation(name, hp)
    current = {key: jnp.asarray(np.asarray(value, np.float64)) for key, value in params.items()}
    state = transformation.init(current)
    path = []
    for t in range(1, steps + 1):
        now = {key: np.asarray(value) for key, value in current.items()}
        grads = {key: jnp.asarray(np.asarray(g, np.float64)) for key, g in gradient_at(now, t).items()}
        updates, state = transformation.update(grads, state, current)
        current = optax.apply_updates(current, updates)
        path.append({key: np.asarray(value) for key, value in current.items()})
    return path


TRAJECTORIES = {"torch": torch_trajectory, "optax": optax_trajectory}
