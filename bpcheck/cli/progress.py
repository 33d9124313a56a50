"""Signs of life for long work: the engine reports progress through a callback, this renders it.

In a terminal, a rich progress bar (gone when the work ends); otherwise (a log, a pipe, CI) a
plain line at most every ``PLAIN_EVERY`` seconds, so a short run prints nothing extra and a long
one shows it is alive.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress

#: Seconds between two plain progress lines when the output is not a terminal.
PLAIN_EVERY = 5.0


class Plain:
    """``Progress``' advance/update, as a line at most every ``every`` seconds."""

    def __init__(self, console: Console, description: str, total: float | None, every: float) -> None:
        self.console, self.description, self.total, self.every = console, description, total, every
        self.completed, self.start = 0.0, time.monotonic()
        self.last = self.start

    def update(self, completed: float | None = None, total: float | None = None,
               description: str | None = None, advance: float = 0) -> None:
        self.completed = (self.completed if completed is None else completed) + advance
        self.total = self.total if total is None else total
        self.description = description or self.description
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            done = f"{self.completed:g}" + ("" if self.total is None else f"/{self.total:g}")
            self.console.print(f"… {self.description}: {done} after {now - self.start:.0f} s",
                               highlight=False, soft_wrap=True)

    def advance(self, amount: float = 1) -> None:
        self.update(advance=amount)


class Bar:
    """One task of a rich ``Progress``, with ``Plain``'s methods."""

    def __init__(self, progress: Progress, description: str, total: float | None) -> None:
        self.progress, self.task = progress, progress.add_task(description, total=total)

    def update(self, completed: float | None = None, total: float | None = None,
               description: str | None = None, advance: float = 0) -> None:
        self.progress.update(self.task, completed=completed, total=total, description=description,
                             advance=advance or None)

    def advance(self, amount: float = 1) -> None:
        self.progress.advance(self.task, amount)


@contextmanager
def progress(console: Console, description: str, total: float | None = None,
             every: float = PLAIN_EVERY) -> Iterator[Bar | Plain]:
    """A progress display for ``description`` (``total`` steps, or unknown): a bar in a
    terminal, else a plain line every ``every`` seconds. Yields an object with
    ``advance(amount=1)`` and ``update(completed=, total=, description=)``."""
    if not console.is_terminal:
        yield Plain(console, description, total, every)
        return
    with Progress(*Progress.get_default_columns(), console=console, transient=True) as bar:
        yield Bar(bar, description, total)
