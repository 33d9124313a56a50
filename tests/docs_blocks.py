"""The fenced code blocks of README.md and docs/**/*.md, and what each one is.

The convention (docs/how-to/write-docs.md):

* ```` ```python ```` is run: in one namespace per page, in a folder of its own; with
  ``title="name.py"`` it is written to that file instead, for the page's later blocks and commands;
* ```` ```console ```` holds commands, each line ``$ command`` (``\\`` continues it), run in that
  folder; a trailing ``# exit N`` is the exit code it must return (else 0); other lines are output;
* ```` ```text ```` is output (or a formula): never run;
* a block right after ``<!-- not run: REASON -->`` is shown, not run; the reason is required.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^(\s*)```(\S*)\s*(.*)$")
TITLE = re.compile(r'title="([^"]+)"')
SKIP = re.compile(r"^<!-- not run:(.*)-->\s*$")
EXIT = re.compile(r"\s+#\s*exit\s+(\d+)\s*$")
RUN, OUTPUT = ("python", "console"), ("text",)


@dataclass
class Block:
    """One fenced block: where it is, its language, its code and how it is used."""

    path: Path
    line: int
    language: str
    code: str
    title: str = ""
    skip: str | None = None  # the reason it is not run
    commands: list[tuple[list[str], int]] = field(default_factory=list)  # console: (argv, code)

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    """README.md and every page under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _commands(code: str) -> list[tuple[list[str], int]]:
    """``$ …`` lines (joined over trailing ``\\``) as (argv, expected exit code)."""
    found, current = [], None
    for line in code.splitlines():
        if current is not None:
            current += " " + line.strip()
        elif line.startswith("$ "):
            current = line[2:].strip()
        else:
            continue
        if current.endswith("\\"):
            current = current[:-1]
            continue
        match = EXIT.search(current)
        expected = int(match[1]) if match else 0
        found.append((shlex.split(current, comments=True), expected))
        current = None
    return found


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, language, attributes = match.groups()
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        code = "\n".join(line[len(indent):] for line in lines[i + 1:end]) + "\n"
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        skip = SKIP.match(before.strip())
        title = TITLE.search(attributes)
        block = Block(path, i + 1, language, code, title[1] if title else "",
                      skip[1].strip() if skip else None)
        if language == "console":
            block.commands = _commands(code)
        found.append(block)
        i = end + 1
    return found
