"""How a search runs: NumPy's BLAS and torch on one thread, the heap it starts with frozen,
and jax's compiled programs kept within the memory mappings Linux allows the process.

bpcheck's matrices are tiny (widths ≤ 16, batches ≤ 8): a second thread cannot speed a
product up, and BLAS threads spin after each one while torch and jax run on the main thread
(``bench/witnesses.py``: a full check cost 16.1 ms per example with both pools at 2 threads,
8.5 ms with both at 1). And torch, jax and Hypothesis leave some 300,000 objects that Python's
garbage collector walks through at every full collection (about 0.4 s each here), though none
of them will ever be garbage: `make test` took 220.0 s with the session's heap frozen, 232.1 s
without (one pair, back to back).
"""

from __future__ import annotations

import gc
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from threadpoolctl import threadpool_limits

#: The most random networks one search tries (``check(examples=…)``, ``--examples``): some
#: 10–20 ms each for an MLP here (``bench/witnesses.py``), so the largest search takes about
#: half an hour; a larger count would run for days unnoticed.
MAX_EXAMPLES = 100_000


@contextmanager
def one_thread() -> Iterator[None]:
    """BLAS (every loaded library) and torch's intra-op pool at one thread inside the block,
    as they were after it. Torch is left alone if it is not loaded yet (nothing is imported)."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(1, user_api="blas"):
        if torch is not None:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(threads)


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Every object alive on entry moved out of the collector's sight inside the block
    (``gc.freeze``), and back after it (``gc.unfreeze``): full collections walk only what the
    block creates. Garbage that exists on entry is collected after the block, not during it.
    A heap someone froze already (a test session, say) is left as it is: unfreezing would undo
    theirs too."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


#: Where Linux says how many memory mappings a process holds (a line each) and may hold.
MAPS, MAX_MAP_COUNT = Path("/proc/self/maps"), Path("/proc/sys/vm/max_map_count")
#: Seconds between two counts of the mappings (a count reads some 10⁴ lines: about 5 ms).
MAPPINGS_EVERY = 1.0
_last_count = [-math.inf]


def _count_lines(path: Path) -> int | None:
    try:
        with path.open("rb") as lines:
            return sum(1 for _ in lines)
    except OSError:  # not Linux
        return None


#: Programs jax may hold before they are dropped: each keeps some 3.5 MiB of the process's memory
#: after it is loaded (120 programs of small networks: 417 MiB, measured), which stays the
#: process's to reuse once they are dropped. Compiled as one code module each, a program holds
#: ~30 memory mappings, so half of vm.max_map_count let ~1,000 of them (3.5 GiB) accumulate:
#: ``make test`` peaked at 11.6 GiB against 8.7 before.
PROGRAMS_HELD = 400
#: jax's event for each program it compiles or loads from its persistent cache.
PROGRAM_LOADED = "/jax/core/compile/backend_compile_duration"
_loaded = [0, False]  # programs loaded since the last drop, whether the listener is registered


def _count_loaded(event: str, duration: float, **kwargs) -> None:
    if event == PROGRAM_LOADED:
        _loaded[0] += 1


def bounded_programs(share: float = 0.5, held: int = PROGRAMS_HELD) -> bool:
    """jax's compiled programs dropped (``jax.clear_caches``) once this process holds more than
    ``share`` of the memory mappings Linux allows it (``vm.max_map_count``, 65,530 by default),
    or has loaded more than ``held`` programs since they were last dropped; whether they were.
    Counted at most every MAPPINGS_EVERY seconds.

    Each program jax compiles for CPU holds three mappings per kernel (code, constants, data) for
    as long as jax caches it, up to thousands of programs: one per random network structure. A
    search over that many structures, or a test session (2 workers, 14,000 examples), used them
    all up, and XLA crashed in its next compile (a segfault or an abort) — ``make test`` lost a
    worker in three runs of six. Programs dropped are compiled again when next asked for, from
    jax's persistent cache where it has them."""
    jax = sys.modules.get("jax")
    now = time.monotonic()
    if jax is None or now - _last_count[0] < MAPPINGS_EVERY:
        return False
    if not _loaded[1]:
        import jax.monitoring

        jax.monitoring.register_event_duration_secs_listener(_count_loaded)
        _loaded[1] = True
    _last_count[0] = now
    mappings, limit = _count_lines(MAPS), _read_int(MAX_MAP_COUNT)
    if _loaded[0] <= held and (mappings is None or limit is None or mappings <= share * limit):
        return False
    jax.clear_caches()
    _loaded[0] = 0
    return True


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None
