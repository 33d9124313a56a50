"""A user's loss declares the targets it is right for: one-hot, distributions (soft labels
summing to one), probabilities in [0, 1] or labels, and is drawn on exactly those. Softmax
cross-entropy on logits with the textbook gradient softmax(z) − y is right wherever each sample's
targets sum to one, and wrong elsewhere (its gradient is softmax(z)·Σy − y)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch.nn.functional as F

from bpcheck import UserLoss, check
from bpcheck.core.verdicts import AGREES, WRONG
from manual.spec import Spec, check_data


def cross_entropy(z, y, xp):
    """logsumexp(z) Σy − Σ y·z per sample (outputs on axis −2)."""
    top = xp.max(z, axis=-2, keepdims=True)
    logsumexp = xp.log(xp.sum(xp.exp(z - top), axis=-2)) + top[..., 0, :]
    return logsumexp * xp.sum(y, axis=-2) - xp.sum(y * z, axis=-2)


def textbook_gradient(z, y):
    """softmax(z) − y: the shortcut that assumes Σy = 1."""
    e = np.exp(z - z.max(axis=-2, keepdims=True))
    return e / e.sum(axis=-2, keepdims=True) - y


def picked_log(p, y, xp):
    """−log p at the target's 1: the cross-entropy of one-hot targets only (p a probability)."""
    return -xp.log(xp.sum(p * y, axis=-2))


def picked_gradient(p, y):
    """−y/p: −1/p_k at the target's 1, 0 elsewhere; for soft targets it should be −y/Σp·y."""
    return -y / p


@pytest.mark.parametrize(("targets", "verdict"), [("distributions", AGREES), ("one_hot", AGREES),
                                                  ("probabilities", WRONG)])
def test_the_textbook_softmax_cross_entropy_is_right_exactly_where_targets_sum_to_one(targets, verdict):
    report = check(UserLoss("soft_ce", cross_entropy, textbook_gradient, targets=targets), examples=15)
    assert report.verdict == verdict, report


@pytest.mark.parametrize(("targets", "verdict"), [("one_hot", AGREES), ("distributions", WRONG)])
def test_a_loss_written_for_one_hot_targets_is_checked_on_them_and_caught_on_soft_ones(targets, verdict):
    loss = UserLoss("picked_nll", picked_log, picked_gradient, targets=targets, on_probabilities=True)
    assert check(loss, examples=15).verdict == verdict


@pytest.mark.parametrize(("targets", "Y", "words"), [
    ("one_hot", [[1.0, 0.0], [1.0, 0.0]], "Y is not one-hot"),
    ("distributions", [[0.5, 0.5], [0.25, 0.25]], "Y's samples sum to"),
    ("distributions", [[1.5, 0.5], [-0.5, 0.5]], "expects probabilities in [0, 1]")])
def test_targets_that_are_not_of_the_declared_kind_are_refused(targets, Y, words):
    loss = UserLoss("soft_ce_" + targets.replace("-", "_"), cross_entropy, textbook_gradient, targets=targets)
    from bpcheck.user.registry import REGISTRY
    with REGISTRY.scoped(loss), pytest.raises(ValueError, match=words.replace("[", r"\[")):
        check_data(Spec((2, 2), ("identity",), loss.name), np.zeros((2, 2)), np.array(Y))


@pytest.mark.parametrize("targets", ["one_hot", "distributions", "labels"])
def test_class_targets_are_drawn_for_two_classes_or_more(targets):
    """With one output, label 0, the one-hot [1] and the distribution [1] are the same in every
    draw: those networks checked the loss on a constant target."""
    from bpcheck import verify

    gradient = (lambda p, y: p - np.eye(p.shape[-2])[y].T) if targets == "labels" else (lambda p, y: p - y)
    value = (lambda p, y: 0.5 * np.sum((p - np.eye(p.shape[-2])[y].T) ** 2, axis=-2)) if targets == "labels" \
        else (lambda p, y: 0.5 * np.sum((p - y) ** 2, axis=-2))
    jax_value = (lambda p, y: 0.5 * jnp.sum((p - jax.nn.one_hot(y, p.shape[0]).T) ** 2, axis=0)) \
        if targets == "labels" else (lambda p, y: 0.5 * jnp.sum((p - y) ** 2, axis=0))
    torch_value = (lambda p, y: 0.5 * ((p - F.one_hot(y, p.shape[1])) ** 2).sum(dim=1)) \
        if targets == "labels" else (lambda p, y: 0.5 * ((p - y) ** 2).sum(dim=1))
    loss = UserLoss(f"half_sse_{targets}", value, gradient, torch=torch_value, jax=jax_value, targets=targets)
    outputs = []
    verdict = verify(loss, max_examples=20, observe=lambda p: outputs.append(p.spec.sizes[-1]))
    assert verdict.passed and len(outputs) >= 20 and min(outputs) >= 2, (verdict, outputs)
