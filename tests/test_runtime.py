"""``bpcheck.core.runtime``: one thread for BLAS and torch, a frozen heap; each restored after."""

from __future__ import annotations

import gc

import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

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
