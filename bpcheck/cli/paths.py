"""Output paths checked before a run, so that a bad one fails in a second, not after minutes."""

from __future__ import annotations

import os
from pathlib import Path


class OutputPathError(ValueError):
    """``option``'s ``path`` cannot be written; ``reason`` says why (the message names both)."""

    def __init__(self, option: str, path: str, reason: str) -> None:
        super().__init__(f"{option}: {reason}")
        self.option, self.path, self.reason = option, path, reason


def check_output_path(path: str, option: str) -> str:
    """``path`` unchanged if a file can be written there: not a directory, and its parent an
    existing, writable directory. Otherwise an ``OutputPathError`` naming ``option``."""
    if not path:
        raise OutputPathError(option, path, "expected a file path, got an empty one")
    target = Path(path)
    parent = target.parent
    if target.is_dir():
        raise OutputPathError(option, path, f"cannot write {path}: it is a directory")
    if not parent.exists():
        raise OutputPathError(option, path, f"cannot write {path}: the directory {parent} does not exist")
    if not parent.is_dir():
        raise OutputPathError(option, path, f"cannot write {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise OutputPathError(option, path, f"cannot write {path}: permission denied")
    return path
