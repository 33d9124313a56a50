"""Every benchmark's tables, shown with rich and kept as Markdown for the README.

``show(name, title, columns, rows)`` prints a table and writes it to ``out/bench/NAME.md``;
``python bench/tables.py`` (the last step of ``make bench``) prints every table this run wrote,
in the order ``make bench`` runs them — the README's performance tables, pasted as printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

OUT = Path(__file__).resolve().parent.parent / "out" / "bench"
ORDER = ("witnesses", "layers", "sensitivity-detail", "sensitivity", "training_step", "commands", "suite")


def markdown(title: str, columns: list[str], rows: list[list[str]]) -> str:
    """A Markdown table with its title in bold above it."""
    lines = [f"**{title}**", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def show(name: str, title: str, columns: list[str], rows: list[list[str]],
         console: Console | None = None, append: bool = False) -> None:
    """Print the table with rich and write (or, with ``append``, add) it to out/bench/NAME.md."""
    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    (console or Console(width=130)).print(table)
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / f"{name}.md", "a" if append else "w", encoding="utf-8") as handle:
        handle.write(markdown(title, columns, rows) + "\n")


def main() -> int:
    written = [OUT / f"{name}.md" for name in ORDER if (OUT / f"{name}.md").exists()]
    if not written:
        print(f"no benchmark tables in {OUT}: run `make bench` first", file=sys.stderr)
        return 1
    print("\n".join(path.read_text(encoding="utf-8") for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
