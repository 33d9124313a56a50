"""``make fuzz`` reports what it finds: a planted failing property is fuzzed, stored and named."""

from __future__ import annotations

import textwrap

from tests.fuzzing import campaign, replay

PLANTED = '''
from hypothesis import given, strategies as st


@given(st.integers(0, 10**6))
def test_planted_property_fails_above_a_thousand(n):
    assert n < 1000


@given(st.integers())
def test_planted_property_that_holds(n):
    assert n == n
'''

CONFTEST = '''
from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase
from tests.fuzzing import register_replay_profile

DATABASE = DirectoryBasedExampleDatabase(".hypothesis/examples")
settings.register_profile("dev", max_examples=30, deadline=None, database=DATABASE)
register_replay_profile(DATABASE)
'''


def test_fuzzing_finds_records_and_reports_a_planted_failure(tmp_path):
    (tmp_path / "test_planted.py").write_text(textwrap.dedent(PLANTED))
    (tmp_path / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    assert replay(["test_planted.py"], cwd=tmp_path).returncode == 0  # an empty database: nothing
    assert campaign(["test_planted.py"], seconds=40, processes=1, cwd=tmp_path) == 0
    assert any((tmp_path / ".hypothesis" / "examples").iterdir()), "nothing was recorded"
    result = replay(["test_planted.py"], cwd=tmp_path)
    assert result.returncode == 1
    assert "FAILED test_planted.py::test_planted_property_fails_above_a_thousand" in result.stdout
    assert "Falsifying example" in result.stdout and "n=1000" in result.stdout
    assert "test_planted_property_that_holds" not in result.stdout.split("short test summary")[-1]
