"""What a user's code raised, where, and what it was given: the words of a RAISED report."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import numpy as np

PACKAGE = Path(__file__).resolve().parent


def user_frame(error: BaseException) -> str:
    """ " at FILE:LINE in FUNCTION: SOURCE" of the innermost frame outside bpcheck, if any."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if not frame.filename.startswith(str(PACKAGE)) and "site-packages" not in frame.filename]
    if not frames:
        return ""
    frame = frames[-1]
    source = (frame.line or "").strip()
    return f" at {frame.filename}:{frame.lineno} in {frame.name}" + (f": {source}" if source else "")


def given_shapes(yours: dict[str, Any]) -> str:
    """The shapes a user's code was given, in its own container."""

    def shape(value: Any) -> str:
        if isinstance(value, dict):
            return "{" + ", ".join(f"{key!r}: {shape(item)}" for key, item in value.items()) + "}"
        if isinstance(value, list | tuple):
            inner = ", ".join(shape(item) for item in value)
            return f"[{inner}]" if isinstance(value, list) else f"({inner})"
        return str(tuple(np.shape(value)))

    return f"params {shape(yours['params'])}, X {shape(yours['X'])}, Y {shape(yours['Y'])}"
