"""Signs of life for long work: the engine reports progress through a callback, this renders it.

In a terminal, a rich progress bar (gone when the work ends); otherwise (a log, a pipe, CI) a
plain line every ``PLAIN_EVERY`` seconds while the work lasts, so a short run prints nothing
extra and a long one shows it is alive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress

#: Seconds between two plain progress lines when the output is not a terminal.
PLAIN_EVERY = 5.0


class Plain:
    """``Progress``' advance/update, shown as a line every ``every`` seconds by a thread of its
    own (so a long step that reports nothing still shows the run is alive)."""

    def __init__(self, console: Console, description: str, total: float | None, every: float) -> None:
        self.console, self.description, self.total, self.every = console, description, total, every
        self.completed, self.start = 0.0, time.monotonic()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._tell, daemon=True)

    def _tell(self) -> None:
        while not self.stopped.wait(self.every):
            done = f"{self.completed:g}" + ("" if self.total is None else f"/{self.total:g}")
            self.console.print(f"… {self.description}: {done} after {time.monotonic() - self.start:.0f} s",
                               highlight=False, soft_wrap=True)

    def update(self, completed: float | None = None, total: float | None = None,
               description: str | None = None, advance: float = 0) -> None:
        self.completed = (self.completed if completed is None else completed) + advance
        self.total = self.total if total is None else total
        self.description = description or self.description

    def advance(self, amount: float = 1) -> None:
        self.update(advance=amount)

    def phase(self, description: str, completed: float, total: float | None) -> None:
        """``completed`` of ``total`` (None: unknown) done in ``description``, a phase of the work."""
        self.description, self.completed, self.total = description, completed, total


class Bar:
    """One task of a rich ``Progress``, with ``Plain``'s methods."""

    def __init__(self, progress: Progress, description: str, total: float | None) -> None:
        self.progress, self.task = progress, progress.add_task(description, total=total)
        self.description = description

    def update(self, completed: float | None = None, total: float | None = None,
               description: str | None = None, advance: float = 0) -> None:
        self.progress.update(self.task, completed=completed, total=total, description=description,
                             advance=advance or None)

    def advance(self, amount: float = 1) -> None:
        self.progress.advance(self.task, amount)

    def phase(self, description: str, completed: float, total: float | None) -> None:
        """As ``Plain.phase``: a new phase gets a bar of its own (its total may be unknown)."""
        if description != self.description:
            self.progress.remove_task(self.task)
            self.task, self.description = self.progress.add_task(description, total=total), description
        self.progress.update(self.task, completed=completed, total=total)


@contextmanager
def progress(console: Console, description: str, total: float | None = None,
             every: float = PLAIN_EVERY) -> Iterator[Bar | Plain]:
    """A progress display for ``description`` (``total`` steps, or unknown): a bar in a
    terminal, else a plain line every ``every`` seconds. Yields an object with
    ``advance(amount=1)`` and ``update(completed=, total=, description=)``."""
    if not console.is_terminal:
        plain = Plain(console, description, total, every)
        plain.thread.start()
        try:
            yield plain
        finally:
            plain.stopped.set()
            plain.thread.join()
        return
    with Progress(*Progress.get_default_columns(), console=console, transient=True) as bar:
        yield Bar(bar, description, total)
