"""What the machine and the dtype can hold, checked before any work: the memory a problem needs
(a rough bound, against what is available now) and the scale of η and λ (against what a
comparison's norms can represent). Each refusal is a ValueError naming the option."""

from __future__ import annotations

import numpy as np

from bpcheck.mlp.problem import Problem
from manual import network
from manual.network import quiet


def check_scale(problem: Problem, steps: int = 1) -> None:
    """A ValueError naming ``--l2`` or ``--lr`` where the check's numbers outgrow the MLP's
    dtype (``fits_scale``), from the loss and the gradient at the start."""
    try:
        with quiet():
            loss = abs(network.loss(*problem.arrays()))
            largest = max(float(np.abs(g).max()) for g in network.gradients(*problem.arrays()).values())
    except FloatingPointError:  # manual.network.Overflow
        loss = largest = float("inf")
    fits_scale(loss, largest, problem.n_params, problem.spec.dtype, problem.lr, steps, problem.spec.l2)
    if problem.spec.l2 > 0:
        check_penalty_leaves_data(problem, largest)


def check_penalty_leaves_data(problem: Problem, largest: float) -> None:
    """A ValueError naming ``--l2`` where the penalty's gradient drowns the data's: where the
    largest gradient entry exceeds the data term's largest by 1/ε of the dtype or more, the
    data term is below the rounding of the sum, and only λW would be checked."""
    spec = problem.spec
    with quiet():
        data = network.gradients(spec.replace(l2=0.0), problem.params, problem.X, problem.Y)
    data_largest = max(float(np.abs(g).max()) for g in data.values())
    eps = float(np.finfo(spec.dtype).eps)
    if largest * eps >= data_largest:
        raise ValueError(f"--l2 {spec.l2:g}: the penalty's gradient λW (up to {largest:.3g}) "
                         f"drowns the data's (up to {data_largest:.3g}): past 1/ε = {1 / eps:.3g} "
                         f"times it, {spec.dtype} rounds the data term away and only λW would be "
                         f"checked; use --l2 ≤ {spec.l2 * data_largest / (largest * eps):.3g}")


def check_stack_scale(problem) -> None:
    """``check_scale`` for a network of layers (a ``StackProblem``): its derived rule's loss and
    gradients (parameters and x) at the start."""
    from bpcheck.layers.compare import DERIVED
    try:
        with quiet():
            loss = abs(float(DERIVED.own_loss(problem)(problem.params | {"x": problem.x})))
            grads = DERIVED.evaluate(problem)[0]
            largest = max(float(np.abs(g).max()) for g in grads.values())
    except FloatingPointError:
        loss = largest = float("inf")
    entries = problem.n_params + (0 if problem.stack.tokens else problem.x.size)
    fits_scale(loss, largest, entries, problem.stack.dtype, problem.lr, 1, 0.0)


def fits_scale(loss: float, largest: float, entries: int, dtype: str, lr: float, steps: int,
               l2: float) -> None:
    """A ValueError naming ``--l2`` or ``--lr`` where the check's numbers outgrow ``dtype``.

    A comparison takes norms of values and of their differences over the P entries it judges
    (the cosine, Σ (a − b)² with |a − b| ≤ 2·max|value|), so every value must stay below
    limit = √(finfo(dtype).max / 4P): the loss L and the largest gradient entry |G| at the start
    (λ/2 Σ‖W‖² and λW grow with ``--l2``), and θ after ``steps`` steps, which moves at most
    steps · η · max(|G|, 1) (SGD moves η|G| a step, Adam-like optimizers about η: a rough bound,
    the gradient taken at the start)."""
    limit = float(np.sqrt(np.finfo(dtype).max / (4 * entries)))
    why = f"{limit:.3g}, √({dtype}'s largest / 4P) for the P = {entries} entries compared"
    if l2 > 0 and not max(loss, largest) <= limit:
        raise ValueError(f"--l2 {l2:g}: the penalty λ/2 Σ‖W‖² or its gradient λW reaches "
                         f"{max(loss, largest):.3g}, beyond {why}; use a smaller --l2")
    if not max(loss, largest) <= limit:
        raise ValueError(f"the loss or its gradient at the start reaches {max(loss, largest):.3g}, "
                         f"beyond {why}: scale the data or the network down")
    reach = steps * lr * max(largest, 1.0)
    if not reach <= limit:
        raise ValueError(f"--lr {lr:g}: {steps} step{'s' * (steps != 1)} of η·max(|∂L/∂θ|, 1) "
                         f"= {lr:g} × {max(largest, 1.0):.3g} move the parameters up to "
                         f"{reach:.3g}, beyond {why}; use --lr ≤ {limit / (steps * max(largest, 1.0)):.3g}")
