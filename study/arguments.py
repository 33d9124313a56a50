"""argparse ``type=`` validators: a bad value is a usage error naming its option (exit 2)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from study.paths import OutputPathError, check_output_path


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    """An integer ≥ 1 (a count of samples, examples, steps)."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def natural(text: str) -> int:
    """An integer ≥ 0 (a random seed)."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value}")
    return value


#: ``--finite-differences auto``: every entry up to this many parameters, else a sample.
AUTO_ALL_UP_TO, AUTO_SAMPLE = 5_000, 500


def finite_differences(text: str) -> str | int:
    """``all``, ``off``, ``auto`` (all up to AUTO_ALL_UP_TO parameters, else AUTO_SAMPLE
    random entries) or ``sample:K`` (K random entries, K ≥ 1) → the word, or K."""
    if text in ("all", "off", "auto"):
        return text
    kind, colon, count = text.partition(":")
    if kind != "sample" or not colon:
        raise argparse.ArgumentTypeError(f"expected all, off, auto or sample:K, got {text!r}")
    return positive_int(count)


def finite_difference_sample(choice: str | int, n_params: int) -> tuple[bool, int | None]:
    """(whether to run finite differences, how many random entries — None for all)."""
    if choice == "off":
        return False, None
    if choice == "auto":
        return True, None if n_params <= AUTO_ALL_UP_TO else AUTO_SAMPLE
    return True, None if choice == "all" else int(choice)


def output_path(option: str) -> Callable[[str], str]:
    """A file path ``option`` can write to, checked before the run (``check_output_path``)."""

    def check(text: str) -> str:
        try:
            return check_output_path(text, option)
        except OutputPathError as error:  # argparse names the option itself
            raise argparse.ArgumentTypeError(error.reason) from None

    check.__name__ = f"{option} path"
    return check
