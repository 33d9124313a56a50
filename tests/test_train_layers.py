"""Training a network of layers (``bpcheck.layers.train``, ``bpcheck train --network``): loss
goes down, mutants differ, every rule starts from the same weights in the same order."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
from matplotlib.image import imread

from bpcheck.core.datasets import Split, split
from bpcheck.layers.compare import DERIVED
from bpcheck.layers.mutants import LAYER_MUTANTS
from bpcheck.layers.train import (
    digits_stack,
    dropout_masks,
    evaluate,
    initial_weights,
    samples,
    train_stack_curve,
    untouched_by,
)
from manual import stack_network
from tests.assertions import run_cli

SMALL = "conv2d:4,k3,p1;relu;max_pool2d:k2;flatten;dense:10"


@pytest.fixture(scope="module")
def data() -> Split:
    """The first 300 training and 150 test samples of digits' seed-0 split: fast."""
    full = split("digits", 0)
    return Split(full.X_train[:, :300], full.Y_train[:, :300], full.y_train[:300],
                 full.X_test[:, :150], full.y_test[:150])


def curve(rule, data, layers=SMALL, lr=0.1, epochs=2):
    stack = digits_stack(layers)
    params, buffers = initial_weights(stack, 0)
    return train_stack_curve(rule, stack, params, buffers, data, lr, epochs, 32, 0, "digits")


def test_derived_training_lowers_the_loss(data):
    stack = digits_stack(SMALL)
    params, buffers = initial_weights(stack, 0)
    start = evaluate(DERIVED, stack, params, buffers, samples(stack, data.X_train), data.y_train)[0]
    trained = curve(DERIVED, data, lr=0.3)
    assert start > trained.loss[0] > trained.loss[1]
    assert trained.train_accuracy[-1] > 0.2 and trained.test_accuracy[-1] > 0.2  # chance: 0.1
    assert (trained.dataset, trained.rule, trained.lr) == ("digits", "derived", 0.3)


def test_a_mutant_that_reaches_the_weights_trains_differently(data):
    derived, spread = curve(DERIVED, data), curve(LAYER_MUTANTS["max_pool_spread"], data)
    assert not np.allclose(derived.loss, spread.loss)


def test_every_rule_starts_from_the_same_weights_in_the_same_order(data):
    """conv_flipped_kernel changes only ∂L/∂x, which a first convolution passes to nobody: with
    the same start, batches and order its curve is derived's, exactly. Training never writes to
    the shared start, and with η → 0 every rule's first loss is the start's."""
    stack = digits_stack(SMALL)
    params, buffers = initial_weights(stack, 0)
    kept = {k: v.copy() for k, v in (params | buffers).items()}
    assert curve(LAYER_MUTANTS["conv_flipped_kernel"], data) == replace(curve(DERIVED, data),
                                                                       rule="conv_flipped_kernel")
    for key, value in kept.items():
        np.testing.assert_array_equal((params | buffers)[key], value)
    x = samples(stack, data.X_train)
    start = evaluate(DERIVED, stack, params, buffers, x, data.y_train)[0]
    for rule in (DERIVED, LAYER_MUTANTS["max_pool_spread"]):
        tiny = train_stack_curve(rule, stack, params, buffers, data, 1e-12, 1, 32, 0, "digits")
        assert np.isclose(tiny.loss[0], start, rtol=1e-9)


def test_dropout_masks_are_per_batch_and_evaluation_runs_without_dropout(data):
    with_dropout, without = digits_stack("flatten;dropout:p0.5;dense:10"), digits_stack("flatten;dense:10")
    first, again = dropout_masks(with_dropout, 32, 0, 1, 2), dropout_masks(with_dropout, 32, 0, 1, 2)
    np.testing.assert_array_equal(first["drop1"], again["drop1"])
    assert not np.array_equal(first["drop1"], dropout_masks(with_dropout, 32, 0, 1, 3)["drop1"])
    assert 0.3 < first["drop1"].mean() < 0.7
    params, buffers = initial_weights(without, 0)
    x = samples(without, data.X_test)
    assert (evaluate(DERIVED, with_dropout, params, buffers, x, data.y_test)
            == evaluate(DERIVED, without, params, buffers, x, data.y_test))
    unscaled = LAYER_MUTANTS["dropout_unscaled"]
    trained = [curve(rule, data, "flatten;dropout:p0.5;dense:10", epochs=1) for rule in (DERIVED, unscaled)]
    assert trained[0].loss != trained[1].loss


def test_evaluation_normalises_with_the_running_statistics(data):
    """Running statistics equal to the evaluated set's (biased) statistics give training mode's loss."""
    stack = digits_stack("flatten;batch_norm;dense:10")
    params, _ = initial_weights(stack, 0)
    x = samples(stack, data.X_test)
    flat = x.reshape(len(x), -1)
    running = {"bn1.running_mean": flat.mean(axis=0), "bn1.running_var": flat.var(axis=0)}
    loss = evaluate(DERIVED, stack, params, running, x, data.y_test)[0]
    assert np.isclose(loss, stack_network.loss(stack, params, x, data.y_test), rtol=1e-12)
    trained = curve(DERIVED, data, "flatten;batch_norm;dense:10", epochs=1)
    assert np.isfinite(trained.loss[0])


def test_a_mutant_of_a_missing_layer_is_named_as_untouched():
    stack = digits_stack(SMALL)
    assert untouched_by(DERIVED, stack) == untouched_by(LAYER_MUTANTS["max_pool_spread"], stack) == ""
    assert "no batch_norm layer" in untouched_by(LAYER_MUTANTS["batch_norm_first_term"], stack)


def test_train_network_writes_curves_and_plot(tmp_path):
    out = run_cli(["train", "--network", "conv2d:2,k3;relu;max_pool2d:k2;flatten;dense:10",
                   "--rules", "derived,max_pool_spread,dropout_unscaled", "--epochs", "1", "--lrs", "0.1",
                   "--batch", "64", "--out", str(tmp_path)], 0)
    assert "conv2d:2,k3; relu;" in out  # the table's network column (wrapped at its spaces)
    assert "not run: the network has no dropout layer" in out
    with (tmp_path / "curves.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["dataset"], r["rule"], r["epoch"]) for r in rows] == [
        ("digits", "derived", "1"), ("digits", "max_pool_spread", "1")]
    assert all(0 <= a <= 1 for c in json.loads((tmp_path / "curves.json").read_text())
               for a in c["test_accuracy"])
    assert imread(tmp_path / "digits.png").std() > 0


@pytest.mark.parametrize(("argv", "message"), [
    (["--network", "flatten;dense:5"], "--network: the network ends with 5 outputs"),
    (["--network", "bogus"], "--network: layer 'bogus'"),
    (["--network", "flatten;dense:10", "--datasets", "iris"], "--datasets: --network trains on digits only"),
    (["--network", "flatten;dense:10", "--rules", "derived,seed-literal"], "--rules: unknown 'seed-literal'"),
    (["--network", "flatten;dense:10", "--hidden", "5"], "--hidden: applies to the MLP"),
    (["--network", "flatten;dense:10", "--loss", "mse"], "--loss: applies to the MLP"),
    (["--network", "flatten;batch_norm;dense:10", "--batch", "3"], "--batch: a batch of 1 sample"),
    (["--network", "flatten;dense:16;batch_norm;relu;dense:10", "--batch", "1"],
     "--batch: a batch of 1 sample"),
    (["--network", "flatten;dense:10", "--lrs", "0"], "--lrs: 0.0 is not a positive"),
])
def test_bad_network_options_exit_two_naming_the_option(argv, message, tmp_path):
    assert message in run_cli(["train", *argv, "--out", str(tmp_path)], 2)
    assert not any(tmp_path.iterdir())
