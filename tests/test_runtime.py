"""``bpcheck.core.runtime``: one thread for BLAS and torch, a frozen heap; each restored after."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from bpcheck.core import runtime
from bpcheck.core.runtime import frozen_heap, one_thread


def blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_one_thread_pins_blas_and_torch_and_restores_them_even_on_an_error():
    with threadpool_limits(2, user_api="blas"):  # the session runs at one (conftest)
        torch.set_num_threads(2)
        try:
            with pytest.raises(ValueError), one_thread():
                assert set(blas_threads()) == {1} and torch.get_num_threads() == 1
                raise ValueError("user code raised")
            assert torch.get_num_threads() == 2 and set(blas_threads()) == {2}
        finally:
            torch.set_num_threads(1)


def test_frozen_heap_hides_what_exists_on_entry_and_gives_it_back_even_on_an_error():
    frozen_by_the_session = gc.get_freeze_count()
    gc.unfreeze()
    try:
        with pytest.raises(ValueError), frozen_heap():
            assert gc.get_freeze_count() > 0  # this process's modules, at least
            raise ValueError("user code raised")
        assert gc.get_freeze_count() == 0
        gc.freeze()  # a heap frozen already stays frozen, all of it
        before = gc.get_freeze_count()
        with frozen_heap():
            pass
        assert gc.get_freeze_count() == before
    finally:
        gc.unfreeze()
        if frozen_by_the_session:
            gc.freeze()


@pytest.fixture
def counted_now(monkeypatch):
    """bounded_programs counts at its next call (not within MAPPINGS_EVERY of the last), with no
    program loaded since the last drop."""
    monkeypatch.setattr(runtime, "_last_count", [-float("inf")])
    runtime.bounded_programs(held=10**9)  # its listener registered
    monkeypatch.setattr(runtime, "_last_count", [-float("inf")])
    monkeypatch.setattr(runtime, "_loaded", [0, True])


def test_jax_programs_are_dropped_once_more_than_so_many_are_loaded(counted_now):
    square = _compiled()
    assert runtime._loaded[0] == 1  # jax said it loaded one program
    assert not runtime.bounded_programs(held=1) and square._cache_size() == 1
    cube = _compiled()
    runtime._last_count[0] = -float("inf")
    assert runtime.bounded_programs(held=1) and square._cache_size() == cube._cache_size() == 0
    assert runtime._loaded[0] == 0


def _compiled():
    """A jitted function with one compiled program in its cache."""
    import jax
    import jax.numpy as jnp

    square = jax.jit(lambda v: jnp.sum(v * v))
    square(np.arange(3.0))
    assert square._cache_size() == 1
    return square


def test_jax_programs_are_dropped_past_the_share_of_mappings_and_kept_below(counted_now, tmp_path,
                                                                             monkeypatch):
    square = _compiled()
    held = runtime._count_lines(runtime.MAPS)
    limit = tmp_path / "max_map_count"
    monkeypatch.setattr(runtime, "MAX_MAP_COUNT", limit)
    limit.write_text(f"{2 * held + 1000}\n")  # below half of it: kept
    assert not runtime.bounded_programs() and square._cache_size() == 1
    runtime._last_count[0] = -float("inf")
    limit.write_text(f"{held}\n")  # past half: dropped, and compiled again when asked
    assert runtime.bounded_programs() and square._cache_size() == 0
    assert float(square(np.arange(3.0))) == 5.0
    limit.write_text("1\n")  # counted again only MAPPINGS_EVERY seconds later
    monkeypatch.setattr(runtime, "MAPPINGS_EVERY", 3600.0)  # however long the compile took
    assert not runtime.bounded_programs() and square._cache_size() == 1


def test_a_search_keeps_its_programs_within_the_mappings(counted_now, tmp_path, monkeypatch):
    """Each example of a search asks first (a search over thousands of structures ran out of
    mappings, and XLA crashed): with a limit already reached, the first example drops them."""
    import jax

    from bpcheck import check
    from tests.test_verify import LOG_COSH

    (tmp_path / "max_map_count").write_text("2\n")
    monkeypatch.setattr(runtime, "MAX_MAP_COUNT", tmp_path / "max_map_count")
    dropped = []
    monkeypatch.setattr(jax, "clear_caches", lambda: dropped.append(True))
    assert check(LOG_COSH, 3).passed and dropped == [True]  # once: the next count is a second away
