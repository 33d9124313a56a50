"""The commands' argparse ``type=`` validators: each turns an option's text into its value, or
raises an ArgumentTypeError that argparse reports as a usage error naming the option (exit 2)."""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Callable

from bpcheck.cli.paths import OutputPathError, check_output_dir, check_output_path


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _at_least(least: int, text: str) -> int:
    value = _integer(text)
    if value < least:
        raise argparse.ArgumentTypeError(f"must be an integer >= {least}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An integer ≥ 1 (a count of samples, examples, steps)."""
    return _at_least(1, text)


def natural(text: str) -> int:
    """An integer ≥ 0 (a random seed)."""
    return _at_least(0, text)


#: The most steps ``--steps`` takes, measured on this project's 2-core machine under load:
#: ``bpcheck optim`` takes about 45 ms a step (1,000 steps 45 s); ``bpcheck --optimizer`` about
#: 1 s a step (10 steps 36 s with the start, 100 steps 125 s: three trajectories, each
#: witness's gradients at every step) and prints a row per step, parameter and framework.
MAX_OPTIM_STEPS, MAX_OPTIMIZER_STEPS = 1_000, 100
#: The most epochs ``train --epochs`` and ``report --epochs`` take: an MLP run's epoch cost some
#: 50 ms on digits (``train --epochs 100``: 62 s for 12 runs), a network of layers' some 0.2 s,
#: so the default 12 runs of 1,000 epochs take about 10 minutes. The most ``sweep --repeats``:
#: some 0.3 s a repeat for its 19 points (1 repeat 3.7 s, 5 repeats 4.8 s), 1,000 about 5 minutes.
MAX_EPOCHS, MAX_REPEATS = 1_000, 1_000


def count_up_to(most: int) -> Callable[[str], int]:
    """The argparse type of a count (steps, examples): an integer from 1 to ``most``."""

    def count(text: str) -> int:
        value = _integer(text)
        if not 1 <= value <= most:
            raise argparse.ArgumentTypeError(f"must be an integer from 1 to {most}, got {value}")
        return value

    return count


def finite_differences(text: str) -> str | int:
    """``all``, ``off``, ``auto`` (along random directions of each parameter, entry by entry
    only where that decides something: ``bpcheck.core.projected``) or ``sample:K`` (K random
    entries, K ≥ 1, besides the directions) → the word, or K."""
    if text in ("all", "off", "auto"):
        return text
    kind, colon, count = text.partition(":")
    if kind != "sample" or not colon:
        raise argparse.ArgumentTypeError(f"expected all, off, auto or sample:K, got {text!r}")
    return positive_int(count)


def finite_difference_sample(choice: str | int) -> tuple[bool | str, int | None]:
    """(what ``ask_witnesses`` takes as ``finite_differences``: False, True (by projection) or
    "all"; how many random entries besides — None for none)."""
    if choice in ("off", "auto", "all"):
        return {"off": False, "auto": True, "all": "all"}[choice], None
    return True, int(choice)


#: The extensions each kind of output is written with (matplotlib picks a figure's format
#: from its path's).
JSON, HTML, MARKDOWN, FIGURE = (".json",), (".html", ".htm"), (".md", ".markdown"), (".png", ".pdf", ".svg")


def output_path(option: str, suffixes: tuple[str, ...] = ()) -> Callable[[str], str]:
    """A file path ``option`` can write to, ending in one of ``suffixes``, checked before the
    run (``check_output_path``)."""

    def check(text: str) -> str:
        try:
            return check_output_path(text, option, suffixes)
        except OutputPathError as error:  # argparse names the option itself
            raise argparse.ArgumentTypeError(error.reason) from None

    check.__name__ = f"{option} path"
    return check


def output_dir(option: str) -> Callable[[str], str]:
    """A directory ``option`` can write into, or make (``check_output_dir``); the files it will
    hold are checked once their names are known."""

    def check(text: str) -> str:
        try:
            return check_output_dir(text, option)
        except OutputPathError as error:
            raise argparse.ArgumentTypeError(error.reason) from None

    check.__name__ = f"{option} directory"
    return check


def int_list(text: str) -> tuple[int, ...]:
    """``4,8,3`` → (4, 8, 3)."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def input_shape(text: str) -> tuple[int, ...]:
    """``1,8,8`` or ``1x8x8`` → (1, 8, 8); ``6,4`` → (6, 4) (T steps of D features); ``16`` →
    (16,) (features, or T tokens before an embedding)."""
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected C,H,W, T,D or F, got {text!r}") from None
    if len(shape) not in (1, 2, 3) or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected C,H,W, T,D or F of positive integers, got {text!r}")
    return shape


def name_list(text: str) -> tuple[str, ...]:
    """``relu, tanh`` → ("relu", "tanh")."""
    return tuple(part.strip() for part in text.split(","))


def repeated(names: list | tuple) -> list:
    """The names given more than once (each once, in order)."""
    return list(dict.fromkeys(name for index, name in enumerate(names) if name in names[:index]))


def rule_list(text: str) -> tuple[str, ...]:
    """Rule names, each once: a rule named twice would run twice."""
    names = name_list(text)
    if twice := repeated(names):
        raise argparse.ArgumentTypeError(f"{', '.join(map(repr, twice))} named twice, got {text!r}")
    return names


def unknown_name(name: str, known, what: str = "rule", where: str = "") -> str:
    """"unknown WHAT 'name'WHERE[ (did you mean …?)]; expected one of …", the closest known
    names first (WHERE e.g. " for --network")."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    guess = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
    return f"unknown {what} {name!r}{where}{guess}; expected one of {', '.join(known)}"
