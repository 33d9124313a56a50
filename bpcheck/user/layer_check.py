"""Check a user's layer (``bpcheck.user.layer``), by the path its declaration takes: several
inputs (``bpcheck.user.inputs_report``); else its first call, in NumPy alone
(``bpcheck.user.first_call``), then a NumPy forward alone against finite differences
(``bpcheck.user.own_forward``) or any other against torch, jax and finite differences
(``bpcheck.user.layer_witnessed``). Only the last loads torch and jax."""

from __future__ import annotations

from bpcheck.user.first_call import first_call
from bpcheck.user.layer import UserLayer
from bpcheck.user.like import KEY_BIAS
from bpcheck.user.report import CheckReport
from bpcheck.user.results import dtype_slips


def check_layer(layer: UserLayer, examples: int = 50, seed: int = 0) -> CheckReport:
    """Search ``examples`` random networks with ``layer`` (``bpcheck.core.search``) for one where
    the derived network (your layer's pair among the built-in ones) disagrees with a witness;
    shrink it; diagnose. The report's verdict is agrees, WRONG, WITNESSES DIFFER, RAISED or
    NOT VERIFIED; its notes say where your arrays' dtype was more precise than the check's
    (compared after rounding: ``bpcheck.user.layer.dtype_slips``)."""
    with dtype_slips() as slips:
        found = _check(layer, examples, seed)
    found.notes += slips
    return found


def _check(layer: UserLayer, examples: int, seed: int) -> CheckReport:
    """``check_layer`` but for the dtype notes."""
    if layer.declared is not None and (len(layer.declared.inputs) > 1 or KEY_BIAS in layer.declared.names):
        from bpcheck.user.inputs_report import check_inputs
        return check_inputs(layer, examples, seed)
    raised = first_call(layer, seed)  # code that raises at once, told at once
    if raised is not None:
        return raised
    if layer.torch is None and layer.declared is None:  # your NumPy forward alone: finite differences
        from bpcheck.user.own_forward import check_own_forward
        return check_own_forward(layer, examples, seed)
    from bpcheck.user.layer_witnessed import check_against_witnesses  # torch and jax load now
    return check_against_witnesses(layer, examples, seed)
