r"""Max and average pooling over kh × kw windows with stride s, no padding, NCHW.

Shapes: x (N, C, H, W), out (N, C, Ho, Wo), Ho = ⌊(H − kh)/s⌋ + 1 (Wo alike). Window offset
(u, v) reads the strided view ``x[:, :, u : u + s(Ho − 1) + 1 : s, …]`` of shape (N, C, Ho, Wo),
so windows may overlap (s < k) or leave gaps (s > k).

* Average: out = (1/(kh·kw)) Σ_{u,v} view_{uv}; backward, every position of a window receives
  dout/(kh·kw), added up where windows overlap.
* Max: out = max_{u,v} view_{uv}; backward, the whole dout of a window goes to the position
  that attained the maximum (added up where windows overlap) — the derivative where the
  maximum is unique. **Ties**: where several positions share the maximum, the function has no
  derivative; the convention here, as in torch and XLA, sends dout to the *first* of them in
  row-major window order (u, then v).
"""

from __future__ import annotations

import numpy as np

from manual.layer_kinds import Layer, output_size, stride
from manual.spec import Array


def windows(x: Array, layer: Layer) -> tuple[list[tuple[slice, slice]], int, int]:
    """The slices of every window offset (u, v) in row-major order, and Ho, Wo."""
    (kh, kw), (sh, sw) = layer.kernel, stride(layer)
    ho, wo = output_size(x.shape[2], kh, sh), output_size(x.shape[3], kw, sw)
    return [(slice(u, u + sh * (ho - 1) + 1, sh), slice(v, v + sw * (wo - 1) + 1, sw))
            for u in range(kh) for v in range(kw)], ho, wo


def avg_pool2d_forward(x: Array, params: dict[str, Array], layer: Layer) -> tuple[Array, tuple]:
    """out = (1/(kh·kw)) Σ_{u,v} view_{uv}(x)."""
    views, _, _ = windows(x, layer)
    out = sum(x[:, :, rows, cols] for rows, cols in views) / len(views)
    return out, (x.shape, x.dtype, views)


def avg_pool2d_backward(dout: Array, cache: tuple) -> tuple[Array, dict[str, Array]]:
    """∂L/∂x[view_{uv}] += dout/(kh·kw) for every offset (u, v)."""
    shape, dtype, views = cache
    dx = np.zeros(shape, dtype=dtype)
    share = dout / len(views)
    for rows, cols in views:
        dx[:, :, rows, cols] += share
    return dx, {}


def max_pool2d_forward(x: Array, params: dict[str, Array], layer: Layer) -> tuple[Array, tuple]:
    """out = max_{u,v} view_{uv}(x); the cache keeps the first offset attaining it."""
    views, _, _ = windows(x, layer)
    stacked = np.stack([x[:, :, rows, cols] for rows, cols in views])  # (kh·kw, N, C, Ho, Wo)
    first = np.argmax(stacked, axis=0)  # argmax returns the first maximum: the tie convention
    return np.take_along_axis(stacked, first[None], axis=0)[0], (x.shape, x.dtype, views, first)


def max_pool2d_backward(dout: Array, cache: tuple) -> tuple[Array, dict[str, Array]]:
    """∂L/∂x[view_{uv}] += dout where offset (u, v) was the window's (first) maximum."""
    shape, dtype, views, first = cache
    dx = np.zeros(shape, dtype=dtype)
    for offset, (rows, cols) in enumerate(views):
        dx[:, :, rows, cols] += np.where(first == offset, dout, 0)
    return dx, {}
