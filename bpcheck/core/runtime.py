"""How a search runs: NumPy's BLAS and torch on one thread, and the heap it starts with frozen.

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
import sys
from collections.abc import Iterator
from contextlib import contextmanager

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
