"""Every table a name lives in, as one registry: ``with REGISTRY.scoped(rule): ...``.

An activation or loss is declared once, by its record in ``manual.vocabulary``, and implemented
four times, independently: in ``manual/`` and in each witness, each keyed by the name. A user's
layer — a user's or a new built-in kind — joins ``manual.stack``'s kinds, the derived rule's
pairs, each witness's registered layers and the strategies' option draws. The
registry knows those tables by kind (activation, loss, layer); what is registered says what it
puts in each (``entries()``, keyed by the same roles), and ``scoped`` puts exactly that there for
a ``with`` block, then takes out what it put in and puts back any entry it replaced, even when
the block raises. Nothing else holds a copy of a table, so nothing else needs refreshing.
"""

from __future__ import annotations

from bpcheck.layers import strategies
from bpcheck.user.tables import Registrable, Registry
from manual import activations, layer_kinds, losses, stack_network, vocabulary
from reference import jax_ref, jax_stack, numeric, torch_ref, torch_stack

__all__ = ["REGISTRY", "Registrable", "Registry"]

REGISTRY = Registry({
    "activation": {"record": vocabulary.ACTIVATIONS, "manual": activations.ACTIVATIONS,
                   "torch": torch_ref.ACTIVATIONS, "jax": jax_ref.ACTIVATIONS,
                   "numeric": numeric.ACTIVATIONS},
    "loss": {"record": vocabulary.LOSSES, "manual": losses.LOSSES, "torch": torch_ref.LOSSES,
             "jax": jax_ref.LOSSES, "numeric": numeric.LOSSES},
    "layer": {"kinds": layer_kinds.LAYER_KINDS, "pairs": stack_network.PAIRS,
              "torch": torch_stack.USER_LAYERS, "jax": jax_stack.USER_LAYERS,
              "texts": strategies.LAYER_TEXTS},
})
