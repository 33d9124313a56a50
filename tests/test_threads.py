"""``bpcheck.threads.one_thread``: BLAS and torch at one thread inside, as they were after."""

from __future__ import annotations

import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from bpcheck.threads import one_thread


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
