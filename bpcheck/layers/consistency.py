"""A layer rule's backward against finite differences of its own forward: the rows that tell a
backward which is not the gradient of its own forward (a wrong derivation) from a wrong
forward. They can add DIFFERS but settle nothing: a backward consistent with a wrong forward is
still wrong."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from bpcheck.core.compare import Row, Truth, gradient_row
from bpcheck.core.projected import parts
from bpcheck.core.verdicts import INCONCLUSIVE
from bpcheck.layers.differences import differences, inputs, projected
from bpcheck.layers.problem import StackProblem
from manual import stack_network
from manual.spec import Array, Params
from manual.stack import Stack, walk

OWN_FORWARD = "own forward"  # the witness name of finite differences of the rule's forward
#: Entries the rule's own forward is differenced on, at most (drawn with seed 0): its rows only
#: tell a wrong backward from a wrong forward and settle nothing, and NumPy runs one perturbed
#: copy at a time (90 % of a full check's time on the small CNN's 1,626 entries, bench/layers.py).
OWN_FORWARD_ENTRIES = 128
CONSISTENCY = "consistency"  # the quantity of an own-forward row: backward against own forward
UNTRUSTED = "finite differences of torch's forward disagree with torch on this gradient"


def reusing_forward(stack: Stack, pairs, masks: Params) -> Callable[[Params, Array], Array]:
    """The rule's forward, ``(arrays, x) → output``, run on copies that differ from the previous
    call's in one array: a layer of ``manual.layers`` (a pure function of its input and own
    parameters) whose input and parameters are the previous call's, byte for byte, is not run
    again — finite differences perturb one array after another, so the layers before it repeat.
    Any other layer (a user's, a mutant's) runs every time, and what follows it is keyed on the
    bytes it returned."""
    layers = stack.layers
    pure = [all((getattr(pairs[inner.kind][0], "__module__", None) or "").startswith("manual.layers.")
                for inner in walk((layer,)) if inner.kind != "res") for layer in layers]
    names = [[f"{inner}.{name}" for inner in walk((layer,)) for name in inner.parameters] for layer in layers]
    previous: list[tuple[tuple, Array]] = []

    def run(arrays: Params, x: Array) -> Array:
        key: tuple = (np.asarray(x).tobytes(),)
        chain = []
        for i, layer in enumerate(layers):
            key = (key, *(arrays[name].tobytes() for name in names[i]))
            if pure[i] and i < len(previous) and previous[i][0] == key:
                x = previous[i][1]
            else:
                x = stack_network.forward((layer,), arrays, x, masks, pairs)[0]
            chain.append((key, x))
            if not pure[i]:
                key = (np.asarray(x).tobytes(),)
        previous[:] = chain
        return x
    return run


def own_forward_truth(own_loss: Callable[[Params], float], truth: Truth, p64: StackProblem,
                      by_entry: bool) -> Truth:
    """The truth with finite differences of the rule's own float64 loss ``own_loss`` beside the
    witnesses': on OWN_FORWARD_ENTRIES of the entries torch's forward was differenced on
    (``by_entry``), else along the projections' directions at torch's steps, in one pass."""
    if by_entry:
        torch_entries = np.flatnonzero(np.concatenate(  # where torch's forward was differenced
            [np.isfinite(truth.errors["numeric"][name]).ravel() for name in [*p64.params, *inputs(p64)]]))
        fd, error = differences(own_loss, p64, OWN_FORWARD_ENTRIES, among=torch_entries)
        return replace(truth, gradients=truth.gradients | {OWN_FORWARD: fd},
                       errors=truth.errors | {OWN_FORWARD: error})
    steps = {name: found.step for name, found in truth.projections["numeric"].items()}
    return replace(truth, projections=truth.projections | {
        OWN_FORWARD: projected(own_loss, p64, False, 1, first=steps)})


def consistency_row(name: str, judged: Truth, parameter: str, backward: np.ndarray,
                    differences_hold: bool) -> Row:
    """The rule's float64 backward against finite differences of its own float64 forward,
    entry by entry; inconclusive where finite differences of torch's forward disagree with
    torch itself: the differences cannot be trusted there (an entry far beyond the step's scale)."""
    row = gradient_row(name, judged, OWN_FORWARD, parameter, backward, judged.witness_allowance)
    trusted = row.checked and differences_hold  # and some entry sampled
    return replace(row, quantity=CONSISTENCY, verdict=row.verdict if trusted else INCONCLUSIVE)


def differences_hold(truth: Truth, parameter: str) -> bool:
    """Whether finite differences of torch's forward agree with torch on this gradient, entry by
    entry where differenced so and along the projections: where they do not (a step across a
    kink or a tie, an entry far beyond the step's scale), no row of finite differences is held
    against a rule; the witnesses' own rows say they disagree."""
    torch_g = truth.gradients["torch"][parameter]
    by_entry = "numeric" not in truth.errors or not gradient_row(
        "", truth, "numeric", parameter, torch_g, truth.witness_allowance).differs
    return by_entry and ("numeric" not in truth.projections
                         or not parts(truth, "numeric", parameter, torch_g, truth.witness_allowance))


def projected_consistency_row(row: Row, holds: bool) -> Row:
    """A projected own-forward row as a consistency row; inconclusive, and why, where torch's
    finite differences do not hold."""
    if holds:
        return replace(row, quantity=CONSISTENCY)
    return replace(row, quantity=CONSISTENCY, verdict=INCONCLUSIVE, reason=UNTRUSTED)
