"""A long check shows progress: every search tells a watcher (``bpcheck.core.search.watching``)
after each example it judges, whatever kind of code is checked; ``bpcheck verify`` shows it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bpcheck import check
from bpcheck.core.search import watching

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import course_layers
import user_rules


@pytest.mark.parametrize(("code", "examples"), [(user_rules.swish, 4), (course_layers.affine, 6)],
                         ids=["activation", "layer"])
def test_every_judged_example_is_told_in_order(code, examples):
    told: list[tuple[int, int]] = []
    with watching(lambda checked, left_out: told.append((checked, left_out))):
        report = check(code, examples=examples)
    assert report.passed, report
    checked = [c for c, _ in told]
    assert checked == sorted(checked) and checked[-1] == report.examples >= examples
    assert told[-1][1] == sum(report.discarded.values())


def test_nothing_is_told_outside_the_block():
    told: list = []
    with watching(lambda *counts: told.append(counts)):
        pass
    check(user_rules.swish, examples=2)
    assert told == []
