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

from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Protocol

from bpcheck.layers import strategies
from manual import activations, layer_kinds, losses, stack_network, vocabulary
from reference import jax_ref, jax_stack, numeric, torch_ref, torch_stack


class Registrable(Protocol):
    """An activation, loss or layer the registry can hold: its kind (a key of the registry's
    tables), its name, and its entry for each of that kind's tables."""

    kind: str
    name: str

    def entries(self) -> Mapping[str, object]: ...


_ABSENT = object()


class Registry:
    """Tables by kind and role (an activation's or loss's ``record``, ``manual`` and one per
    witness; a layer's ``kinds``, ``pairs``, one per witness and ``texts``, how the strategies
    draw its options)."""

    def __init__(self, tables: Mapping[str, Mapping[str, MutableMapping]]) -> None:
        self.tables = tables

    def _where(self, rule: Registrable) -> list[tuple[MutableMapping, object]]:
        """Each table of the rule's kind with the rule's entry for it."""
        kind = getattr(rule, "kind", None)
        if kind not in self.tables or not callable(getattr(rule, "entries", None)):
            raise TypeError(f"{rule!r:.80} is not a UserActivation, UserLoss or UserLayer")
        tables, entries = self.tables[kind], rule.entries()
        if set(entries) != set(tables):
            raise ValueError(f"{rule.name}: entries for {sorted(entries)}, expected {sorted(tables)}")
        return [(tables[role], entries[role]) for role in tables]

    @contextmanager
    def scoped(self, rule: Registrable) -> Iterator[None]:
        """The rule in every table of its kind for a ``with`` block; afterwards each table
        holds what it held before."""
        where = self._where(rule)
        replaced = [(table, table.get(rule.name, _ABSENT)) for table, _ in where]
        try:
            for table, entry in where:
                table[rule.name] = entry
            yield
        finally:
            for table, before in replaced:
                if before is _ABSENT:
                    table.pop(rule.name, None)
                else:
                    table[rule.name] = before

    def register(self, rule: Registrable) -> None:
        """The rule in every table of its kind, for good (idempotent for the same name)."""
        for table, entry in self._where(rule):
            table[rule.name] = entry


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
