"""What a user's code raised, where, and what it was given: the words of a RAISED report; and
the time limit on each call of it."""

from __future__ import annotations

import signal
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

PACKAGE = Path(__file__).resolve().parent.parent  # bpcheck/, this file being in bpcheck/core/


def user_frame(error: BaseException) -> str:
    """ " at FILE:LINE in FUNCTION: SOURCE" of the innermost frame outside bpcheck, if any."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if not frame.filename.startswith(str(PACKAGE)) and "site-packages" not in frame.filename]
    if not frames:
        return ""
    frame = frames[-1]
    source = (frame.line or "").strip()
    return f" at {frame.filename}:{frame.lineno} in {frame.name}" + (f": {source}" if source else "")


def shape_of(value: Any) -> str:
    """A value's shape, in its own container: {'W1': (3, 4)}, [(3, 4)], (2, 5); a number's ()."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key!r}: {shape_of(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple):
        inner = ", ".join(shape_of(item) for item in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if hasattr(value, "shape") or isinstance(value, int | float | complex | np.generic):
        return str(tuple(np.shape(value)))
    return type(value).__name__


def given_shapes(yours: dict[str, Any]) -> str:
    """The shapes a user's code was given, in its own container."""
    return f"params {shape_of(yours['params'])}, X {shape_of(yours['X'])}, Y {shape_of(yours['Y'])}"


class UserCodeError(Exception):
    """One of the callables of a user's rule, activation, loss or layer raised ``error``, or
    returned what bpcheck cannot use (``error`` a ``BadResult`` saying what); ``part`` names which."""

    def __init__(self, rule: str, part: str, error: BaseException) -> None:
        said = f"returned the wrong thing: {error}" if isinstance(error, BadResult) else f"raised {error!r}"
        super().__init__(f"{rule}: your {part} {said}")
        self.rule, self.part, self.error = rule, part, error


# --- a time limit on each call of a user's code -----------------------------------------------
#: Seconds one call of a user's code may take (``check(..., time_limit=…)``, ``verify --time-limit``).
DEFAULT_TIME_LIMIT = 60.0
_limit: float | None = DEFAULT_TIME_LIMIT
_running = False  # a limited call is under way (an inner one runs under the outer one's timer)


class TimeLimitExceeded(Exception):
    """A call of a user's code did not return within the time limit: it is stopped (SIGALRM)."""

    def __init__(self, seconds: float, given: str) -> None:
        said = f" (given {given})" if given else ""
        super().__init__(f"it did not return within the time limit of {seconds:g} s{said}; "
                         "it was stopped there: set check(..., time_limit=SECONDS) or bpcheck verify "
                         "--time-limit SECONDS if it needs longer")
        self.seconds, self.given = seconds, given


#: Seconds beyond which a time limit is none: SIGALRM's timer holds no more than some 10⁹ s here
#: (``signal.setitimer`` raises OverflowError at 10¹⁰), and 10⁸ s is over three years.
NO_LIMIT_BEYOND = 1e8
#: The shortest time limit: the timer repeats every ``limit`` seconds past it, and at 10⁻⁴ s its
#: signals came faster than Python handled them (a late one, after the call, printed "Signal 14
#: ignored due to race condition"); at 10⁻³ s none did, in 4,000 calls. Ten times that.
SHORTEST_TIME_LIMIT = 0.01


def check_time_limit(seconds: Any) -> float | None:
    """A time limit in seconds, at least SHORTEST_TIME_LIMIT; None (no limit) for None, inf or
    beyond NO_LIMIT_BEYOND."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float | np.integer | np.floating) \
            or not seconds >= SHORTEST_TIME_LIMIT:
        raise ValueError(f"time_limit={seconds!r} must be a number of seconds >= "
                         f"{SHORTEST_TIME_LIMIT:g}, or None (or inf) for no limit")
    return None if seconds > NO_LIMIT_BEYOND else float(seconds)


@contextmanager
def time_limit(seconds: float | None):
    """Every call of user code inside the block gets ``seconds`` (None: no limit)."""
    global _limit
    previous, _limit = _limit, check_time_limit(seconds)
    try:
        yield
    finally:
        _limit = previous


def shapes_of(args: tuple) -> str:
    """"arguments of shapes (3, 5), (3, 5)": what a call of user code was given."""
    return "arguments of shapes " + ", ".join(shape_of(arg) for arg in args)


def limited(function: Callable, args: tuple, kwargs: dict | None = None,
            given: Callable[[], str] | None = None) -> Any:
    """``function(*args, **kwargs)``, stopped with ``TimeLimitExceeded`` after the time limit.
    SIGALRM (``signal.setitimer``): in the main thread only — elsewhere (a thread of your own)
    the call runs unlimited, as Python can stop nothing else. The signal repeats each second past
    the limit, so code that swallows the exception (``except Exception``) is stopped too. A timer
    already set (pytest-timeout, your own) is put back, less the time spent, when the call ends."""
    global _running
    seconds = _limit
    if (seconds is None or _running or not hasattr(signal, "setitimer")
            or threading.current_thread() is not threading.main_thread()):
        return function(*args, **(kwargs or {}))

    armed = [True]  # off first thing when the call ends: a late signal then raises nothing

    def expire(signum, frame):
        if armed[0]:
            raise TimeLimitExceeded(seconds, given() if given is not None else shapes_of(args))

    handler = signal.signal(signal.SIGALRM, expire)
    start = time.monotonic()
    outer, interval = signal.getitimer(signal.ITIMER_REAL)
    _running = True
    try:  # armed inside: a signal at once (a limit of 1e-9 s) still finds the timer disarmed after
        signal.setitimer(signal.ITIMER_REAL, seconds, min(seconds, 1.0))
        return function(*args, **(kwargs or {}))
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        _running = False
        signal.signal(signal.SIGALRM, handler)
        if outer > 0:
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - start), 1e-3), interval)


# --- what a user's NumPy callable returns -----------------------------------------------------
class BadResult(ValueError):
    """A user's callable returned what bpcheck cannot use: the words say what, and what was due."""


def result_problem(result: Any, shape: tuple, dtype: np.dtype | None, like: str) -> str | None:
    """What is wrong with ``result``, or None: it must be a real floating ndarray (a NumPy or
    Python real for ``shape`` ()) of exactly ``shape`` and, unless None, ``dtype`` (``like``:
    whose shape and dtype those are, e.g. "z's")."""
    due = f"an ndarray of {like} shape {shape}" + (f" and dtype {dtype}" if dtype is not None else "")
    if isinstance(result, np.ndarray | np.generic):
        array = np.asarray(result)
    elif shape == () and dtype is None and isinstance(result, int | float) and not isinstance(result, bool):
        return None
    else:
        return f"it returned {type(result).__name__} {result!r:.60}; expected {due}"
    if np.iscomplexobj(array):
        return (f"it returned a complex array (dtype {array.dtype}); expected {due}: the function "
                "is real, and so is its derivative")
    if not np.issubdtype(array.dtype, np.floating) or (dtype is not None and array.dtype != dtype):
        return f"it returned an array of dtype {array.dtype}; expected {due}"
    if array.shape != shape:
        return f"it returned an array of shape {array.shape}; expected {due}"
    return None


def nan_problem(result: Any, inputs: tuple, named: np.ndarray | None = None) -> str | None:
    """"NaN at …" when ``result`` holds a NaN though no floating input does (or None); ``named``
    (e.g. z, of ``result``'s shape) gives the input value at the first NaN."""
    array = np.asarray(result)
    nan = np.isnan(array)
    if not nan.any() or any(np.isnan(x).any() for x in inputs
                            if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)):
        return None
    first = tuple(int(i) for i in np.argwhere(nan)[0])
    at = f" (z = {named[first]:g})" if named is not None and named.shape == array.shape else ""
    return (f"it returned NaN at {int(nan.sum())} of {array.size} entries, the first at index "
            f"{first}{at}, from inputs without a NaN")
