"""A corpus of user code for ``bench/corpus.py``: activations, losses, training steps and layers
written the way students and from-scratch libraries write them (textbook formulas, their own
conventions), not in bpcheck's style. Each correct entry has a wrong twin: the same code with one
slip (a missing factor or term, a sign, a stale or lost path, an approximation off by ≥ 1e-4
relative where |z| ≤ 5).

    from corpus_code import ENTRIES   # with bench/ on sys.path
    for entry in ENTRIES: bpcheck.check(entry.correct), bpcheck.check(entry.twin)
"""

from __future__ import annotations

from dataclasses import dataclass

#: The kinds of entry, in the order the table lists them.
KINDS = ("activation", "loss", "step", "layer")


@dataclass(frozen=True)
class Entry:
    """One piece of user code: ``correct`` (a UserActivation, UserLoss, UserRule or UserLayer)
    and ``twin``, the same code with ``slip``; ``form`` says how it is written."""

    name: str
    kind: str
    form: str
    correct: object
    twin: object
    slip: str


def _all() -> list[Entry]:
    from corpus_code import activations, gelu, layers, losses, recurrent, steps

    return [*activations.ENTRIES, *gelu.ENTRIES, *losses.ENTRIES, *steps.ENTRIES, *layers.ENTRIES,
            *recurrent.ENTRIES]


def __getattr__(name: str):
    if name == "ENTRIES":  # built on first use: the modules import torch and jax
        value = _all()
        globals()[name] = value
        return value
    raise AttributeError(name)
