"""Independent witnesses: each computes L, ∂L/∂θ and one SGD step in float64.

Every witness reads the model description from ``manual.spec`` and nothing else from ``manual``.
"""

from __future__ import annotations

from collections.abc import Callable, KeysView
from dataclasses import dataclass

from reference import jax_ref, numeric, torch_ref


@dataclass(frozen=True)
class Witness:
    """One independent way to compute the loss, its gradient and an SGD step, and what else it
    can do (a capability is None where it cannot)."""

    name: str
    title: str  # as reports name it
    loss: Callable
    gradients: Callable
    sgd_step: Callable
    #: (gradients, new params) from one evaluation, where the witness has an optimizer
    gradients_and_sgd_step: Callable | None
    #: (gradients, their estimated absolute error), where the witness estimates
    gradients_with_error: Callable | None
    #: reruns perturbed by 1 ± ρ (``bpcheck.tolerances``), where the witness can measure that;
    #: such a witness's ``gradients`` also compute in another dtype (``dtype=``)
    perturbed_gradients: Callable | None
    #: activation and loss names this witness implements (live views of its tables, checked
    #: against the spec vocabulary)
    activations: KeysView[str]
    losses: KeysView[str]


WITNESSES: dict[str, Witness] = {
    module_name: Witness(
        module_name, module.TITLE, module.loss, module.gradients, module.sgd_step,
        getattr(module, "gradients_and_sgd_step", None),
        getattr(module, "gradients_with_error", None),
        getattr(module, "perturbed_gradients", None),
        module.ACTIVATIONS.keys(), module.LOSSES.keys(),
    )
    for module_name, module in (("torch", torch_ref), ("jax", jax_ref), ("numeric", numeric))
}
