"""The corpus of user code (bench/corpus_code) keeps its shape, and a sample of it keeps its
verdicts: ``bench/corpus.py`` run as a user runs it, on entries whose outcome is settled."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bpcheck import UserActivation, UserLayer, UserLoss, UserRule

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
TYPES = {"activation": UserActivation, "loss": UserLoss, "step": UserRule, "layer": UserLayer}
#: settled today at seed 0: each correct entry agrees and each twin is caught
SETTLED = ("sigmoid_exp", "half_sse", "loop_accumulate")


@pytest.fixture(scope="module")
def entries(tmp_path_factory):
    sys.path.insert(0, str(BENCH))
    try:
        from corpus_code import ENTRIES
        yield ENTRIES
    finally:
        sys.path.remove(str(BENCH))


def test_every_entry_has_a_twin_of_its_kind(entries):
    assert len(entries) >= 40
    names = [e.name for e in entries]
    assert len(set(names)) == len(names)
    for e in entries:
        kind = TYPES[e.kind]
        assert isinstance(e.correct, kind) and isinstance(e.twin, kind), e.name
        assert e.twin.name != e.correct.name and e.slip and e.form, e.name


def test_the_required_kinds_and_forms_are_there(entries):
    kinds = Counter(e.kind for e in entries)
    assert kinds["activation"] >= 20 and kinds["loss"] >= 6 and kinds["step"] >= 5 and kinds["layer"] >= 6
    names = {e.name for e in entries}
    for family in ("elu", "softplus", "tanh", "sigmoid", "gelu"):  # each in ≥ 2 forms
        assert sum(name.startswith(family) for name in names) >= 2, family
    assert {"silu", "mish", "softsign", "hard_tanh", "hard_sigmoid", "leaky_where"} <= names
    steps = {e.name: e.correct for e in entries if e.kind == "step"}
    assert any(rule.per_sample for rule in steps.values())
    assert any(rule.computes == "in_place" for rule in steps.values())
    layers = [e.correct for e in entries if e.kind == "layer"]
    assert sum(layer.rank == 2 for layer in layers) >= 3  # recurrent and attention


def test_a_settled_sample_keeps_its_verdicts():
    run = subprocess.run([sys.executable, str(BENCH / "corpus.py"), "--seeds", "0", "--examples", "15",
                          "--only", ",".join(SETTLED), "--jobs", "1"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    k = len(SETTLED)
    assert re.search(rf"correct: {k} of {k} agree at every seed, 0 false alarms; twins: {k} of {k} caught",
                     out), out


def test_bad_options_are_usage_errors():
    run = subprocess.run([sys.executable, str(BENCH / "corpus.py"), "--only", "no_such_entry"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 2 and "no entry named no_such_entry" in run.stderr
