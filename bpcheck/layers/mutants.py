"""Deliberately wrong layers: each mutant is the derived network with one layer kind's pair
swapped for a classic mistake, named by what it gets wrong (``bpcheck.layers.diagnose`` must find
that cause without reading the mutant). Mutants live here, never in ``manual``."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bpcheck.core.hunt import Hunt, hunted
from bpcheck.core.verdicts import INCONCLUSIVE
from bpcheck.layers.compare import DERIVED, StackRule, compare_stack, swapped
from manual.layers import attention, conv, normalisation, pooling, recurrent, simple
from manual.spec import Array
from manual.stack import Layer, Stack


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


def _rnn_bptt_one_step(dout: Array, cache: tuple) -> tuple[Array, dict]:
    """Backpropagation through the last step alone (BPTT truncated to one step): ∂L/∂θ from
    dout_{T−1} through step T−1; the earlier steps' dout, and h_{T−2}'s paths, are dropped
    (∂L/∂h0 = 0 unless T = 1)."""
    kind, x, _, caches = cache
    dx, grads, _, dc = recurrent.zero_gradients(dout, cache)
    last = x.shape[1] - 1
    dp, dq, dc, direct = recurrent.step_backward(kind, dout[:, last], dc, caches[last])
    dh = direct + recurrent.accumulate(last, dp, dq, cache, dx, grads)
    return dx, recurrent.initial_state_gradients(grads, dh, dc) if last == 0 else grads


def _through_time(dout: Array, cache: tuple, step=recurrent.step_backward, carried: bool = True
                  ) -> tuple[Array, dict]:
    """``recurrent.recurrent_backward``'s loop with ``step`` for the one-step backward; not
    ``carried``: each step back from its own dout_t (dh_t = dout_t, dc_t = 0), the gradient
    through h_t → h_{t+1} (and c_t → c_{t+1}) never added."""
    kind, x, _, caches = cache
    dx, grads, dh, dc = recurrent.zero_gradients(dout, cache)
    no_dc = dc
    for t in reversed(range(x.shape[1])):
        dh_t, dc_t = (dout[:, t] + dh, dc) if carried else (dout[:, t], no_dc)
        dp, dq, dc, direct = step(kind, dh_t, dc_t, caches[t])
        dh = direct + recurrent.accumulate(t, dp, dq, cache, dx, grads)
    return dx, recurrent.initial_state_gradients(grads, dh, dc)


def _lstm_step_sigmoid_for_tanh(kind: str, dh: Array, dc: Array, step: tuple) -> tuple:
    """lstm's step back with the tanh gate g differentiated as a sigmoid: its rows of dp are
    ∂L/∂c_t ⊙ i ⊙ g(1 − g) for ∂L/∂c_t ⊙ i ⊙ (1 − g²); the other gates as derived."""
    dp, _, dc_prev, direct = recurrent.step_backward(kind, dh, dc, step)
    i, g = step[2], step[4]
    width = g.shape[1]
    dp[:, 2 * width:3 * width] = recurrent.cell_gradient(dh, dc, step) * i * (g * (1 - g))
    return dp, dp, dc_prev, direct


def _attention_unscaled_backward(dout: Array, cache: tuple) -> tuple[Array, dict]:
    """dQ = dS K and dK = dSᵀ Q: the scores' 1/√d left out of the backward."""
    q, k, _, p = cache[3:7]
    grads, dv, dp = attention.values_backward(dout, cache)
    ds = attention.softmax_backward(p, dp)
    return attention.inputs_backward(ds @ k, ds.swapaxes(-1, -2) @ q, dv, cache, grads)


def _softmax_diagonal(dout: Array, cache: tuple) -> tuple[Array, dict]:
    """dS = p(1 − p) ⊙ dP: the softmax Jacobian diag(p) − p pᵀ reduced to its diagonal."""
    q, k, _, p = cache[3:7]
    grads, dv, dp = attention.values_backward(dout, cache)
    dq, dk = attention.scores_backward(p * (1 - p) * dp, q, k)
    return attention.inputs_backward(dq, dk, dv, cache, grads)


def _causal_mask_ignored_backward(dout: Array, cache: tuple) -> tuple[Array, dict]:
    """The softmax's backward from P recomputed without the causal mask, softmax_s(Q Kᵀ/√d)
    over every s (dV from the masked P, as the forward computed it)."""
    q, k = cache[3:5]
    grads, dv, dp = attention.values_backward(dout, cache)
    unmasked = attention.softmax_rows(attention.scores(q, k, causal=False))
    dq, dk = attention.scores_backward(attention.softmax_backward(unmasked, dp), q, k)
    return attention.inputs_backward(dq, dk, dv, cache, grads)


def _mutant(name: str, kind: str, cause: str, forward=None, backward=None) -> StackRule:
    """The derived rule with one kind's forward or backward swapped (``swapped``)."""
    old_forward, old_backward = DERIVED.pairs[kind]
    return StackRule(name, cause, claims_correct=False, cause=cause,
                     pairs=swapped({kind: (forward or old_forward, backward or old_backward)}))


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
            backward=_rnn_bptt_one_step),
    _mutant("rnn_hidden_not_carried", "rnn", "the hidden state's gradient not carried from step to step",
            backward=lambda d, c: _through_time(d, c, carried=False)),
    _mutant("lstm_sigmoid_derivative_for_tanh", "lstm", "the lstm's tanh gate g differentiated as a "
            "sigmoid: g(1 − g) for 1 − g²",
            backward=lambda d, c: _through_time(d, c, _lstm_step_sigmoid_for_tanh)),
    _mutant("attention_unscaled_backward", "attention", "attention's backward without 1/√d",
            backward=_attention_unscaled_backward),
    _mutant("softmax_diagonal", "attention", "attention's softmax Jacobian reduced to its diagonal "
            "p(1 − p)", backward=_softmax_diagonal),
    _mutant("causal_mask_ignored_backward", "attention", "the causal mask ignored in the softmax's "
            "backward", backward=_causal_mask_ignored_backward),
)}

#: Each mutant's layer kind: the kind whose pair it swaps.
MUTANT_KINDS = {name: next(iter(rule.pairs.maps[0])) for name, rule in LAYER_MUTANTS.items()}

#: A draw where a mutant's ∂L/∂θ and ∂L/∂x are all within CHANGE of the derived rule's, relative
#: to the derived rule's largest, is one its mistake does not touch. Such a mistake (a stride
#: mistake where the stride is 1) runs the derived arithmetic and differs by exactly 0; 10⁻⁶ is
#: the threshold tests/test_layer_mutants.py used before it moved here (a change below it is
#: within float32's allowances, so no comparison could tell it from rounding anyway).
CHANGE = 1e-6


def changes_something(rule: StackRule, problem) -> bool:
    """Whether the mistake moves any gradient on this draw (max |mutant − derived| over every
    quantity > CHANGE·max |derived|)."""
    mutant, derived = rule.evaluate(problem)[0], DERIVED.evaluate(problem)[0]
    scale = max(float(np.max(np.abs(g), initial=0.0)) for g in derived.values())
    return any(float(np.max(np.abs(mutant[k] - derived[k]), initial=0.0)) > CHANGE * scale for k in derived)


def hunt_layer_mutant(rule: StackRule, max_examples: int, seed: int = 0,
                      finite_differences: bool | str = False, stack: Stack | None = None) -> Hunt:
    """``bpcheck.mlp.mutants.hunt_mutant`` for a layer mutant: Hypothesis searches random values of
    ``stack`` or, without one, its layer alone (``layer_problems``, float64 or float32) for a
    draw where it differs from the witnesses, then shrinks it. Draws its mistake does not change
    (``changes_something``) are discarded: a hunt that checks none has ``checked`` 0."""
    from hypothesis import strategies as st  # Hypothesis loads when a hunt runs

    from bpcheck.core.search import search
    from bpcheck.layers.sequence_strategies import layer_problems
    from bpcheck.layers.strategies import stack_problems

    def judge(problem, discard):
        if not changes_something(rule, problem):
            discard("where the mistake changes nothing")
        (report,), _, _ = compare_stack(problem, [rule], finite_differences)
        if report.verdict == INCONCLUSIVE:
            discard("inconclusive")
        return report

    strategy = stack_problems(stack) if stack is not None else st.sampled_from(
        ["float64", "float32"]).flatmap(lambda dtype: layer_problems(MUTANT_KINDS[rule.name], dtype))
    return hunted(rule, search(rule.name, strategy, judge, max_examples, seed))
