r"""Two-dimensional convolution (cross-correlation, as every framework computes it), NCHW.

Shapes: x (N, C, H, W), W (F, C, kh, kw), b (F,), out (N, F, Ho, Wo) with
Ho = ⌊(H + 2p − d(kh − 1) − 1)/s⌋ + 1 (and Wo alike), stride s, zero padding p on every
side, dilation d. With x_p the padded input,

.. math::
    out_{nfij} = b_f + Σ_{c,u,v} W_{fcuv}\, x_p[n, c, i s + u d, j s + v d].

Each kernel offset (u, v) reads one strided view of x_p, ``x_p[:, :, ud : ud + s(Ho − 1) + 1 : s, …]``
of shape (N, C, Ho, Wo), so the layer is kh·kw products over channels. Backward, by the chain
rule on that sum (each output touches x_p at those positions only):

* ∂L/∂W_{fcuv} = Σ_{n,i,j} dout_{nfij} · view_{uv}[n, c, i, j];
* ∂L/∂b_f = Σ_{n,i,j} dout_{nfij};
* ∂L/∂x_p[view_{uv}] += Σ_f dout_{nf··} W_{fcuv} — the same strided positions, so a stride
  leaves gaps and overlapping offsets add up; ∂L/∂x is ∂L/∂x_p without its padding border.
  This *is* the convolution with the flipped kernel: the flip comes from the indexing, and
  flipping W by hand on top of it is the classic mistake.
"""

from __future__ import annotations

import numpy as np

from manual.layer_kinds import Layer, output_size, stride
from manual.spec import Array


def window(kernel_offset: int, count: int, layer: Layer, axis: int) -> slice:
    """Positions of x_p that kernel offset u reads for the ``count`` outputs along ``axis`` (0:
    rows, 1: columns): u·d, u·d + s, …, u·d + s(count − 1)."""
    start, step = kernel_offset * layer.dilation, stride(layer)[axis]
    return slice(start, start + step * (count - 1) + 1, step)


def conv2d_forward(x: Array, params: dict[str, Array], layer: Layer) -> tuple[Array, tuple]:
    """out = b + Σ_{u,v} W[:, :, u, v] · view_{uv}(x_p) (see the module docstring)."""
    W = params["W"]
    kh, kw = W.shape[2:]
    p = layer.padding
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    ho = output_size(x.shape[2], kh, stride(layer)[0], p, layer.dilation)
    wo = output_size(x.shape[3], kw, stride(layer)[1], p, layer.dilation)
    out = np.zeros((x.shape[0], W.shape[0], ho, wo), dtype=x.dtype)
    for u in range(kh):
        for v in range(kw):
            view = xp[:, :, window(u, ho, layer, 0), window(v, wo, layer, 1)]
            out += np.einsum("nchw,fc->nfhw", view, W[:, :, u, v])
    if "b" in params:
        out += params["b"][None, :, None, None]
    return out, (xp, W, x.shape, layer, "b" in params)


def conv2d_backward(dout: Array, cache: tuple) -> tuple[Array, dict[str, Array]]:
    """∂L/∂x (∂L/∂x_p without its border) and ∂L/∂W, ∂L/∂b from dout (N, F, Ho, Wo)."""
    dxp, grads = padded_backward(dout, cache)
    p, shape = cache[3].padding, cache[2]
    return dxp[:, :, p:p + shape[2], p:p + shape[3]], grads


def padded_backward(dout: Array, cache: tuple) -> tuple[Array, dict[str, Array]]:
    """∂L/∂x_p of the padded input, ∂L/∂W and ∂L/∂b (see the module docstring)."""
    xp, W, _, layer, has_bias = cache
    kh, kw = W.shape[2:]
    ho, wo = dout.shape[2:]
    dxp, dW = np.zeros_like(xp), np.zeros_like(W)
    for u in range(kh):
        for v in range(kw):
            rows, cols = window(u, ho, layer, 0), window(v, wo, layer, 1)
            dW[:, :, u, v] = np.einsum("nfhw,nchw->fc", dout, xp[:, :, rows, cols])
            dxp[:, :, rows, cols] += np.einsum("nfhw,fc->nchw", dout, W[:, :, u, v])
    return dxp, {"W": dW} | ({"b": dout.sum(axis=(0, 2, 3))} if has_bias else {})
