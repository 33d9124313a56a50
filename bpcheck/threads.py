"""NumPy's BLAS, and torch if it is loaded, on one thread while bpcheck checks.

bpcheck's matrices are tiny (widths ≤ 16, batches ≤ 8): a second thread cannot speed a
product up, and BLAS threads spin after each one while torch and jax run on the main thread
(``bench/witnesses.py``: a full check cost 16.1 ms per example with both pools at 2 threads,
8.5 ms with both at 1).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits


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
