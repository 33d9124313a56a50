"""Independent witnesses: each computes L, ∂L/∂θ and one SGD step in float64.

Every witness reads the model description from ``manual.spec`` and nothing else from ``manual``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, KeysView
from functools import cached_property


class Witness:
    """One independent way to compute the loss, its gradient and an SGD step, and what else it
    can do (a capability is None where it cannot). Its module — and torch or jax with it — is
    imported when one of these is first read, so naming witnesses costs nothing."""

    def __init__(self, name: str, module: str) -> None:
        self.name, self.module_name = name, module

    @cached_property
    def module(self):
        return importlib.import_module(self.module_name)

    @property
    def title(self) -> str:  # as reports name it
        return self.module.TITLE

    @property
    def loss(self) -> Callable:
        return self.module.loss

    @property
    def gradients(self) -> Callable:
        return self.module.gradients

    @property
    def sgd_step(self) -> Callable:
        return self.module.sgd_step

    @property
    def gradients_and_sgd_step(self) -> Callable | None:
        """(gradients, new params) from one evaluation, where the witness has an optimizer."""
        return getattr(self.module, "gradients_and_sgd_step", None)

    @property
    def started_gradients_and_sgd_step(self) -> Callable | None:
        """``gradients_and_sgd_step`` started, where the witness computes asynchronously (jax's
        dispatch): the call returned waits for its answer, so other work runs meanwhile."""
        return getattr(self.module, "started_gradients_and_sgd_step", None)

    @property
    def gradients_with_error(self) -> Callable | None:
        """(gradients, their estimated absolute error), where the witness estimates."""
        return getattr(self.module, "gradients_with_error", None)

    @property
    def perturbed_gradients(self) -> Callable | None:
        """Reruns perturbed by 1 ± ρ (``bpcheck.core.tolerances``), where the witness can measure
        that; such a witness's ``gradients`` also compute in another dtype (``dtype=``)."""
        return getattr(self.module, "perturbed_gradients", None)

    @property
    def activations(self) -> KeysView[str]:
        """Activation names this witness implements (a live view of its table)."""
        return self.module.ACTIVATIONS.keys()

    @property
    def losses(self) -> KeysView[str]:
        return self.module.LOSSES.keys()


WITNESSES: dict[str, Witness] = {
    name: Witness(name, f"reference.{module}")
    for name, module in (("torch", "torch_ref"), ("jax", "jax_ref"), ("numeric", "numeric"))
}

#: The witness that reruns itself perturbed, and in the rule's dtype, to measure allowances
#: (``bpcheck.mlp.allowances``); a test checks it is the one with ``perturbed_gradients``.
SENSITIVITY_WITNESS = "torch"
