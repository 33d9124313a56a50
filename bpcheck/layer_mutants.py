"""Deliberately wrong layers: each mutant is the derived network with one layer kind's pair
swapped for a classic mistake, named by what it gets wrong (``bpcheck.layer_diagnose`` must find
that cause without reading the mutant). Mutants live here, never in ``manual``."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bpcheck.stack_compare import DERIVED, StackRule
from manual.layers import attention, conv, normalisation, pooling, recurrent, simple
from manual.stack import Layer

Array = np.ndarray


def _conv_backward(dout: Array, cache: tuple, flip: bool = False, crop_corner: bool = False,
                   unit_stride: bool = False, unit_dilation: bool = False) -> tuple[Array, dict]:
    """conv2d's backward with one mistake: the kernel flipped for ∂L/∂x, the padding border
    cropped from the corner instead of each side, or the stride or dilation taken as 1."""
    xp, W, shape, layer, has_bias = cache
    wrong = replace(layer, stride=(1, 1) if unit_stride else layer.stride,
                    dilation=1 if unit_dilation else layer.dilation)
    # the flipped kernel enters ∂L/∂x only: ∂L/∂W reads x and dout, not W
    dx, grads = conv.conv2d_backward(dout, (xp, W[:, :, ::-1, ::-1] if flip else W, shape, wrong, has_bias))
    if crop_corner:
        dx = conv.padded_backward(dout, cache)[0][:, :, :shape[2], :shape[3]]
    return dx, grads


def _max_pool_spread(dout: Array, cache: tuple) -> tuple[Array, dict]:
    """Every position of a window receives the window's whole dout."""
    shape, dtype, views, _ = cache
    dx = np.zeros(shape, dtype=dtype)
    for rows, cols in views:
        dx[:, :, rows, cols] += dout
    return dx, {}


def _avg_pool_unscaled(dout: Array, cache: tuple) -> tuple[Array, dict]:
    """avg_pool2d's backward without its 1/(kh·kw)."""
    dx, grads = pooling.avg_pool2d_backward(dout, cache)
    return dx * len(cache[2]), grads


def _batch_norm_first_term(dout: Array, cache: tuple) -> tuple[Array, dict]:
    """∂L/∂x = γ dout/σ: the mean and variance terms left out."""
    sigma, gamma = cache[1:3]
    _, grads = normalisation.batch_norm_backward(dout, cache)
    return dout * normalisation.per_channel(gamma, dout) / sigma, grads


def _layer_norm_over_batch(x: Array, params: dict, layer: Layer) -> tuple[Array, tuple]:
    """Layer norm's statistics taken over the batch axis instead of each sample's."""
    x_hat, _, _, sigma = normalisation.standardise(x, (0,), layer.eps)
    return params["gamma"] * x_hat + params["beta"], (x_hat, sigma, params["gamma"], (0,))


def _dropout_unscaled(x: Array, params: dict, layer: Layer, mask: Array | None = None):
    """out = x ⊙ mask: the inverted scaling 1/(1 − p) forgotten (forward and backward)."""
    return simple.dropout_forward(x, params, replace(layer, p=0.0), mask)


def _embedding_assigned(dout: Array, cache: tuple) -> tuple[None, dict]:
    """∂L/∂W[x] = dout assigned, not accumulated: of a repeated token, the last occurrence wins."""
    x, W = cache
    tokens, rows = x.reshape(-1), dout.reshape(-1, W.shape[1])
    last = len(tokens) - 1 - np.unique(tokens[::-1], return_index=True)[1]  # each token's last slot
    dW = np.zeros_like(W)
    dW[tokens[last]] = rows[last]
    return None, {"W": dW}


def _mutant(name: str, kind: str, cause: str, forward=None, backward=None) -> StackRule:
    pairs = dict(DERIVED.pairs)
    old_forward, old_backward = pairs[kind]
    pairs[kind] = (forward or old_forward, backward or old_backward)
    return StackRule(name, cause, claims_correct=False, pairs=pairs, cause=cause)


LAYER_MUTANTS: dict[str, StackRule] = {rule.name: rule for rule in (
    _mutant("conv_flipped_kernel", "conv2d", "∂L/∂x through the kernel flipped (convolution taken "
            "for cross-correlation)", backward=lambda d, c: _conv_backward(d, c, flip=True)),
    _mutant("conv_padding_from_corner", "conv2d", "∂L/∂x cut from the padded input's corner instead "
            "of without its border (padding ignored in the backward pass)",
            backward=lambda d, c: _conv_backward(d, c, crop_corner=True)),
    _mutant("conv_stride_ignored", "conv2d", "the backward pass takes stride 1",
            backward=lambda d, c: _conv_backward(d, c, unit_stride=True)),
    _mutant("conv_dilation_ignored", "conv2d", "the backward pass takes dilation 1",
            backward=lambda d, c: _conv_backward(d, c, unit_dilation=True)),
    _mutant("max_pool_spread", "max_pool2d", "max pooling's gradient sent to the whole window",
            backward=_max_pool_spread),
    _mutant("avg_pool_unscaled", "avg_pool2d", "average pooling's gradient without 1/(kh·kw)",
            backward=_avg_pool_unscaled),
    _mutant("batch_norm_first_term", "batch_norm", "batch norm's ∂L/∂x without its mean and "
            "variance terms (γ·dout/σ)", backward=_batch_norm_first_term),
    _mutant("layer_norm_over_batch", "layer_norm", "layer norm over the batch axis instead of each "
            "sample's", forward=_layer_norm_over_batch),
    _mutant("dropout_unscaled", "dropout", "dropout's mask not rescaled by 1/(1 − p)",
            forward=_dropout_unscaled),
    _mutant("embedding_assigned", "embedding", "the embedding's gradient assigned, not accumulated, "
            "over repeated tokens", backward=_embedding_assigned),
    _mutant("rnn_bptt_one_step", "rnn", "backpropagation through time truncated to the last step",
            backward=lambda d, c: recurrent.recurrent_backward(d, c, last_only=True)),
    _mutant("rnn_hidden_not_carried", "rnn", "the hidden state's gradient not carried from step to step",
            backward=lambda d, c: recurrent.recurrent_backward(d, c, carry=False)),
    _mutant("lstm_sigmoid_derivative_for_tanh", "lstm", "the lstm's tanh gate g differentiated as a "
            "sigmoid: g(1 − g) for 1 − g²", backward=lambda d, c: recurrent.recurrent_backward(
                d, c, sigma_for_tanh=True)),
    _mutant("attention_unscaled_backward", "attention", "attention's backward without 1/√d",
            backward=lambda d, c: attention.attention_backward(d, c, scale=False)),
    _mutant("softmax_diagonal", "attention", "attention's softmax Jacobian reduced to its diagonal "
            "p(1 − p)", backward=lambda d, c: attention.attention_backward(d, c, diagonal=True)),
    _mutant("causal_mask_ignored_backward", "attention", "the causal mask ignored in the softmax's "
            "backward", backward=lambda d, c: attention.attention_backward(d, c, unmasked=True)),
)}

#: Each mutant's layer kind: the kind its pairs change.
MUTANT_KINDS = {name: next(kind for kind, pair in rule.pairs.items() if pair != DERIVED.pairs[kind])
                for name, rule in LAYER_MUTANTS.items()}
