"""Output paths checked before a run, so that a bad one fails in a second, not after minutes.

Every command checks every path it will write with these helpers while parsing its options
(``bpcheck.cli.validators.output_path`` / ``output_dir`` as argparse types): a file's parent must
be an existing directory where a file can be created (tried: created and removed at once, so
``/proc`` and read-only mounts are refused even for root), and its extension must be one the
writer produces (matplotlib picks the format from it; a missing one would make ``adir.png``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


class OutputPathError(ValueError):
    """``option``'s ``path`` cannot be written; ``reason`` says why (the message names both)."""

    def __init__(self, option: str, path: str, reason: str) -> None:
        super().__init__(f"{option}: {reason}")
        self.option, self.path, self.reason = option, path, reason


def _can_create(path: Path) -> str:
    """"" if a file can be created at ``path`` (which does not exist), else why not: creating
    it is tried and undone at once."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except OSError as error:
        return error.strerror or "cannot create a file there"
    os.unlink(path)
    return ""


def _can_rewrite(path: Path) -> str:
    """"" if the existing regular file ``path`` can be opened for writing (nothing is written)."""
    if not path.is_file():
        return "it is not a regular file"
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
    except OSError as error:
        return error.strerror or "cannot open it for writing"
    return ""


def check_output_path(path: str, option: str, suffixes: Sequence[str] = ()) -> str:
    """``path`` unchanged if a file can be written there: not a directory (nor ending in ``/``),
    its parent an existing directory where a file can be created, and its extension one of
    ``suffixes`` (any when empty). Otherwise an ``OutputPathError`` naming ``option``."""
    if not path:
        raise OutputPathError(option, path, "expected a file path, got an empty one")
    target = Path(path)
    parent = target.parent
    if target.is_dir() or path.endswith(("/", os.sep)):
        raise OutputPathError(option, path, f"cannot write {path}: it is a directory")
    if suffixes and target.suffix.lower() not in suffixes:
        got = repr(target.suffix) if target.suffix else "no extension"
        raise OutputPathError(option, path, f"cannot write {path}: expected a file ending in "
                                            f"{' or '.join(suffixes)}, got {got}")
    if not parent.exists():
        raise OutputPathError(option, path, f"cannot write {path}: the directory {parent} does not exist")
    if not parent.is_dir():
        raise OutputPathError(option, path, f"cannot write {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(option, path, f"cannot write {path}: permission denied")
    if target.exists() and (why := _can_rewrite(target)):
        raise OutputPathError(option, path, f"cannot write {path}: {why}")
    if not target.exists() and (why := _can_create(target)):
        raise OutputPathError(option, path, f"cannot write {path}: no file can be made in {parent} ({why})")
    return path


def check_output_dir(path: str, option: str, files: Sequence[str] = ()) -> str:
    """``path`` unchanged if it is a directory the files named ``files`` can be written into, or
    can be made one (its parent exists and a directory can be made there: tried and undone).
    Otherwise an ``OutputPathError`` naming ``option``."""
    if not path:
        raise OutputPathError(option, path, "expected a directory, got an empty path")
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise OutputPathError(option, path, f"cannot write into {path}: it is a file, not a directory")
    if target.is_dir():
        for name in files:
            check_output_path(str(target / name), option)
        return path
    if not target.parent.is_dir():
        raise OutputPathError(option, path, f"cannot make {path}: the directory {target.parent} "
                                            "does not exist")
    try:
        target.mkdir()
    except OSError as error:
        raise OutputPathError(option, path, f"cannot make {path}: {error.strerror}") from None
    target.rmdir()
    return path
