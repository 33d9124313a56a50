"""The exit-code scheme (``bpcheck/cli/exits.py``) where a fresh run cannot reach a code: the
command's logic with the engine patched, in-process. tests/test_commands_fresh.py runs the
codes a user can reach as a user does."""

from __future__ import annotations

import types

import pytest

import bpcheck.mlp.diagnose
import bpcheck.mlp.optimizers
from bpcheck.cli.exits import EXIT_AGREES, EXIT_INCONCLUSIVE, EXIT_USAGE, EXIT_WRONG, worst
from bpcheck.cli.verify import exit_code as verify_exit_code
from bpcheck.core.verdicts import (
    AGREES,
    DIFFERS,
    FAILED,
    INCONCLUSIVE,
    NOT_VERIFIED,
    RAISED,
    UNSETTLED,
    WITNESSES_DIFFER,
    WRONG,
)
from tests.assertions import run_cli


def test_the_codes_are_the_scheme_and_wrong_wins_over_inconclusive():
    assert (EXIT_AGREES, EXIT_WRONG, EXIT_USAGE, EXIT_INCONCLUSIVE) == (0, 1, 2, 3)
    assert worst(EXIT_AGREES, EXIT_INCONCLUSIVE) == EXIT_INCONCLUSIVE
    assert worst(EXIT_INCONCLUSIVE, EXIT_WRONG, EXIT_AGREES) == EXIT_WRONG
    assert worst(EXIT_AGREES, EXIT_AGREES) == EXIT_AGREES


@pytest.mark.parametrize(("verdict", "code"), [
    (AGREES, EXIT_AGREES), (WRONG, EXIT_WRONG), (RAISED, EXIT_WRONG), (DIFFERS, EXIT_WRONG),
    (WITNESSES_DIFFER, EXIT_WRONG), (NOT_VERIFIED, EXIT_INCONCLUSIVE), (INCONCLUSIVE, EXIT_INCONCLUSIVE),
])
def test_each_verify_verdict_has_its_code(verdict, code):
    assert verify_exit_code(verdict) == code


def test_every_verdict_word_has_one_code_and_no_other_word_has_one():
    """One vocabulary: each word is agrees, failed or unsettled, and a word outside it (the
    layers' old "UNCHECKED") is a bug, not a silent exit 1."""
    assert not FAILED & UNSETTLED and AGREES not in FAILED | UNSETTLED
    assert {verify_exit_code(v) for v in FAILED} == {EXIT_WRONG}
    assert {verify_exit_code(v) for v in UNSETTLED} == {EXIT_INCONCLUSIVE}
    with pytest.raises(ValueError, match="UNCHECKED"):
        verify_exit_code("UNCHECKED")


def test_optim_exits_one_when_a_difference_is_unexplained(monkeypatch):
    row = {"optimizer": "sgd", "differences": "none", "torch_vs_optax": 1e-7, "manual_torch_vs_torch": 0.0,
           "manual_switched_vs_optax": 1e-7, "rounding": 1e-16, "explained": False}
    monkeypatch.setattr(bpcheck.mlp.optimizers, "convention_table", lambda steps, seed: [row])
    assert "some difference is not explained" in run_cli(["optim", "--steps", "2"], EXIT_WRONG)


def test_an_optimizer_check_no_framework_can_judge_exits_three_without_a_traceback(monkeypatch):
    def uninformative(*args):
        raise bpcheck.mlp.optimizers.Uninformative("rounding decides this trajectory")

    monkeypatch.setattr(bpcheck.mlp.optimizers, "compare_training", uninformative)
    out = run_cli(["--optimizer", "sgd", "--steps", "2", "--rules", "derived"], EXIT_INCONCLUSIVE)
    assert "sgd: inconclusive against torch: rounding decides this trajectory" in out
    assert "sgd: inconclusive against optax: rounding decides this trajectory" in out


def test_diagnose_exits_one_when_nothing_in_the_panel_explains_a_parameter(monkeypatch):
    unexplained = types.SimpleNamespace(parameter="W1", hypotheses=(), factor=1.0, residual=0.5)
    monkeypatch.setattr(bpcheck.mlp.diagnose, "diagnose", lambda directions, problem: [unexplained])
    assert "nothing in the panel" in run_cli(["diagnose", "sign-flip"], EXIT_WRONG)
