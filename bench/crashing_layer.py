"""A ``like=`` layer whose backward raises on every call (a pooling backward that indexes past
its cache, as a course solution's did): ``bench/like_layers.py`` times how soon ``bpcheck
verify`` reports it (issue 29's target: ≤ 3 s)."""

from __future__ import annotations

import numpy as np

from bpcheck import UserLayer


def pool_forward(x, params):
    """2 × 2 max pooling, NCHW."""
    n, c, h, w = x.shape
    windows = x[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2)
    return windows.max(axis=(3, 5)), x


def pool_backward(dout, x):
    """Raises IndexError: the windows' positions read one past the input."""
    return x[:, :, np.arange(x.shape[2] + 1)], {}


layer = UserLayer("pool_raises", pool_forward, pool_backward, like="max_pool2d:k2")
