"""A property that fails on purpose: tests/test_fuzzing.py fuzzes it to show `make fuzz` reports finds."""

from hypothesis import example, given  # noqa: F401  (a replay's `git apply` patch adds @example)
from hypothesis import strategies as st


@given(st.integers(min_value=0, max_value=10**6))
def test_planted_failure(n: int) -> None:
    assert n < 100, "planted failure"
