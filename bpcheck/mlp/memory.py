"""What a check needs of the machine's memory, against what is available now: a rough bound,
refused before any work with a ValueError naming what set the sizes."""

from __future__ import annotations

import itertools
import os


def available_memory() -> int:
    """Bytes of memory available to a new allocation now (psutil's ``available`` where installed,
    else the free pages os.sysconf reports)."""
    try:
        import psutil
    except ImportError:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return int(psutil.virtual_memory().available)


def gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.3g} GiB"


def check_memory(needed: int, what: str) -> None:
    """A ValueError starting with ``what`` (the options that set the sizes) where ``needed``
    bytes (a rough bound: ``manual.stack_checks.memory_bound``) exceed the available memory."""
    free = available_memory()
    if needed > free:
        raise ValueError(f"{what}: needs about {gib(needed)} of memory (a rough bound: parameters + "
                         f"activations × batch, in float64, for each witness), more than the "
                         f"{gib(free)} available")


def mlp_memory(sizes: tuple[int, ...], n: int) -> int:
    """``memory_bound`` for an MLP of ``sizes`` on n samples: P = Σ (n_{k−1} + 1)·n_k weights
    and bias, A = Σ n_k entries per sample."""
    from manual.stack_checks import MEMORY_COPIES
    params = sum((fan_in + 1) * fan_out for fan_in, fan_out in itertools.pairwise(sizes))
    return 8 * MEMORY_COPIES * (params + n * sum(sizes))


def check_drawn_mlp_memory(sizes: tuple[int, ...], what: str) -> None:
    """``check_memory`` for an MLP of ``sizes`` on the largest batch the strategies draw, the
    ValueError starting with ``what`` (the option or argument that set the sizes)."""
    from bpcheck.mlp.strategies import MAX_MLP_BATCH  # Hypothesis: only once sizes are pinned
    check_memory(mlp_memory(sizes, MAX_MLP_BATCH), f"{what} with up to {MAX_MLP_BATCH} samples")
