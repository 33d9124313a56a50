"""The registry's machinery (``bpcheck.user.registry`` holds every table, the witnesses'
included): ``Registry.scoped`` puts a rule's entries in its kind's tables for a ``with`` block and
takes them out after. ``MANUAL_LAYERS`` holds a layer's derived side alone (its kind, its pair,
how its options are drawn): enough to run a user's layer in NumPy before torch and jax load
(``bpcheck.user.first_call``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Protocol

from bpcheck.layers import strategies
from manual import layer_kinds, stack_network


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

    def __init__(self, tables: Mapping[str, Mapping[str, MutableMapping]], partial: bool = False) -> None:
        self.tables, self.partial = tables, partial  # partial: some of each kind's tables only

    def _where(self, rule: Registrable) -> list[tuple[MutableMapping, object]]:
        """Each table of the rule's kind with the rule's entry for it."""
        kind = getattr(rule, "kind", None)
        if kind not in self.tables or not callable(getattr(rule, "entries", None)):
            raise TypeError(f"{rule!r:.80} is not a UserActivation, UserLoss or UserLayer")
        tables, entries = self.tables[kind], rule.entries()
        if not set(tables) <= set(entries) if self.partial else set(entries) != set(tables):
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



MANUAL_LAYERS = Registry({"layer": {"kinds": layer_kinds.LAYER_KINDS, "pairs": stack_network.PAIRS,
                                    "texts": strategies.LAYER_TEXTS}}, partial=True)
