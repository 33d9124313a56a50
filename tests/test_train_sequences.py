"""Sequence models on generated tasks (``bpcheck.layers.train_sequences``, ``bpcheck train --task``):
the tasks are what they say, the derived rule learns them, a mutant trains differently, and the
same seed gives the same curves."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
from matplotlib.image import imread

from bpcheck.cli.train import parse
from bpcheck.layers.compare import DERIVED
from bpcheck.layers.mutants import LAYER_MUTANTS
from bpcheck.layers.train import DIGITS_CNN, batch_masks, evaluate, initial_weights, untouched_by
from bpcheck.layers.train_sequences import (
    TASKS,
    generate,
    misfit,
    parity,
    running_parity,
    sequence_stack,
    train_sequence_curve,
)
from tests.assertions import run_cli

RNN = TASKS["running-parity"].network
#: Small and fast settings at which the derived rule learns (seed 0, measured): running parity
#: of T = 10 reaches test accuracy 1.000 after 6 epochs at η = 0.3 (rnn_bptt_one_step: 0.647);
#: parity of T = 6 reaches 1.000 after 12 epochs at η = 0.1.
FAST = {"running-parity": (10, (500, 200), 0.3, 6), "parity": (6, (1000, 300), 0.1, 12)}


def train(task: str, rule=DERIVED, layers: str | None = None, seed: int = 0):
    length, sizes, lr, epochs = FAST[task]
    stack = sequence_stack(layers or TASKS[task].network, length)
    params, buffers = initial_weights(stack, seed)
    return train_sequence_curve(rule, stack, params, buffers, generate(task, length, seed, sizes), lr,
                                epochs, 32, seed)


@pytest.fixture(scope="module")
def derived() -> dict:
    return {task: train(task) for task in FAST}


def test_running_parity_labels_each_real_step_with_the_parity_so_far():
    x, y, padding = running_parity(400, 7, np.random.default_rng(3))
    assert x.shape == y.shape == padding.shape == (400, 7)
    lengths = padding.sum(axis=1)
    assert set(lengths) == set(range(1, 8))  # every length 1…T occurs
    np.testing.assert_array_equal(padding, np.arange(7) < lengths[:, None])  # real steps, then padding
    assert not np.any(x[padding == 0]) and not np.any(y[padding == 0])
    assert set(np.unique(x)) == {0, 1}
    for row, labels, length in zip(x, y, lengths, strict=True):
        parity_so_far = 0
        for t in range(length):
            parity_so_far ^= int(row[t])
            assert labels[t] == parity_so_far


def test_parity_labels_each_sequence_with_the_parity_of_its_tokens():
    x, y, padding = parity(300, 6, np.random.default_rng(1))
    assert x.shape == padding.shape == (300, 6) and y.shape == (300,) and padding.all()
    assert all(label == sum(row) % 2 for row, label in zip(x.tolist(), y.tolist(), strict=True))
    assert 0.4 < y.mean() < 0.6


def test_a_task_is_reproducible_from_its_seed_and_train_and_test_differ():
    first, again, other = (generate("running-parity", 8, seed, (50, 30)) for seed in (0, 0, 1))
    for name in ("x_train", "y_train", "padding_train", "x_test", "y_test", "padding_test"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert first.x_train.shape == (50, 8) and first.x_test.shape == (30, 8)
    assert not np.array_equal(first.x_train[:30], first.x_test)
    assert not np.array_equal(first.x_train, other.x_train)


def test_the_derived_rule_learns_both_tasks(derived):
    for task, curve in derived.items():
        assert (curve.dataset, curve.rule) == (task, "derived")
        assert curve.loss[-1] < curve.loss[0] / 5, task
        assert curve.train_accuracy[-1] > 0.95 and curve.test_accuracy[-1] > 0.9, task  # chance: 0.5


def test_mutants_train_differently(derived):
    """Backpropagation through the last step alone cannot learn running parity; attention's
    diagonal softmax Jacobian changes the parity curve (the residual path still learns it)."""
    one_step = train("running-parity", LAYER_MUTANTS["rnn_bptt_one_step"])
    assert one_step.test_accuracy[-1] < 0.8 < derived["running-parity"].test_accuracy[-1]
    diagonal = train("parity", LAYER_MUTANTS["softmax_diagonal"])
    assert not np.allclose(diagonal.loss, derived["parity"].loss)


def test_the_same_seed_gives_the_same_curves_and_the_start_is_not_written_to(derived):
    length, sizes, lr, epochs = FAST["running-parity"]
    stack = sequence_stack(RNN, length)
    params, buffers = initial_weights(stack, 0)
    kept = {name: value.copy() for name, value in params.items()}
    data = generate("running-parity", length, 0, sizes)
    again = train_sequence_curve(DERIVED, stack, params, buffers, data, lr, epochs, 32, 0)
    assert again == derived["running-parity"]
    for name, value in kept.items():
        np.testing.assert_array_equal(params[name], value)
    assert train("running-parity", seed=1) != derived["running-parity"]
    # a mutant of a layer the network lacks is exactly the derived rule there
    gru = "embedding:8,v2;gru:8;dense:2"
    assert "no rnn layer" in untouched_by(LAYER_MUTANTS["rnn_hidden_not_carried"],
                                          sequence_stack(gru, length))
    assert train("running-parity", LAYER_MUTANTS["attention_unscaled_backward"], gru) == replace(
        train("running-parity", layers=gru), rule="attention_unscaled_backward")


def test_padded_steps_count_in_neither_loss_nor_accuracy():
    stack = sequence_stack(RNN, 8)
    params, buffers = initial_weights(stack, 0)
    data = generate("running-parity", 8, 0, (64, 1))
    garbled = np.where(data.padding_train == 1, data.y_train, 1 - data.y_train)
    assert np.any(garbled != data.y_train)
    assert (evaluate(DERIVED, stack, params, buffers, data.x_train, data.y_train, data.padding_train)
            == evaluate(DERIVED, stack, params, buffers, data.x_train, garbled, data.padding_train))
    everywhere = np.ones_like(data.padding_train)
    assert (evaluate(DERIVED, stack, params, buffers, data.x_train, garbled, everywhere)
            != evaluate(DERIVED, stack, params, buffers, data.x_train, data.y_train, everywhere))


def test_batch_masks_hold_padding_for_a_per_step_loss_and_dropout_drawn_per_batch():
    padding = np.array([[1, 1, 0], [1, 0, 0]])
    per_step = sequence_stack("embedding:4,v2;dropout:p0.5;rnn:4;dense:2", 3)
    masks = batch_masks(per_step, padding, 0, 1, 2)
    assert masks.keys() == {"drop1", "padding"} and masks["drop1"].shape == (2, 3, 4)
    np.testing.assert_array_equal(masks["padding"], padding)
    np.testing.assert_array_equal(masks["drop1"], batch_masks(per_step, padding, 0, 1, 2)["drop1"])
    assert not np.array_equal(masks["drop1"], batch_masks(per_step, padding, 0, 1, 3)["drop1"])
    whole = sequence_stack("embedding:4,v2;dropout:p0.5;flatten;dense:2", 3)
    assert batch_masks(whole, padding, 0, 1, 2).keys() == {"drop1"}


def test_a_network_that_cannot_learn_the_task_is_named():
    def why(layers: str, task: str) -> str:
        return misfit(sequence_stack(layers, 5), task)

    assert why(RNN, "running-parity") == why(TASKS["parity"].network, "parity") == ""
    assert "labels the whole sequence" in why(RNN, "parity")
    assert "labels every step" in why("embedding:4,v2;flatten;dense:2", "running-parity")
    assert "ends with 3 outputs" in why("embedding:4,v2;rnn:4;dense:3", "running-parity")
    assert "start with an embedding" in why("dense:2", "parity")


def test_train_task_writes_curves_and_plot(tmp_path):
    out = run_cli(["train", "--task", "running-parity", "--network", "embedding:4,v2;rnn:8;dense:2",
                   "--length", "6", "--epochs", "2", "--lrs", "0.3",
                   "--rules", "derived,rnn_bptt_one_step,lstm_sigmoid_derivative_for_tanh",
                   "--out", str(tmp_path)], 0)
    assert "not run: the network has no lstm layer" in out
    assert "network: embedding:4,v2; rnn:8; dense:2 on T=6" in out
    with (tmp_path / "curves.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["dataset"], r["network"], r["rule"], r["epoch"]) for r in rows] == [
        ("running-parity", "embedding:4,v2;rnn:8;dense:2 on T=6", rule, epoch)
        for rule in ("derived", "rnn_bptt_one_step") for epoch in ("1", "2")]
    curves = json.loads((tmp_path / "curves.json").read_text())
    assert [(c["dataset"], c["rule"], len(c["loss"])) for c in curves] == [
        ("running-parity", "derived", 2), ("running-parity", "rnn_bptt_one_step", 2)]
    assert all(0 <= a <= 1 for c in curves for a in c["train_accuracy"] + c["test_accuracy"])
    assert imread(tmp_path / "running-parity.png").std() > 0


def test_task_defaults_and_digits_as_the_default_task():
    args = parse(["--task", "parity"], "")
    assert (args.network, args.length, args.lrs, args.epochs, args.batch, args.rules) == (
        TASKS["parity"].network, 6, (0.1,), 60, 32, "derived,softmax_diagonal,embedding_assigned")
    assert args.datasets is None
    assert parse(["--task", "digits"], "").network == DIGITS_CNN
    assert parse(["--network", "flatten;dense:10"], "").task is None


@pytest.mark.parametrize(("argv", "message"), [
    (["--task", "parity", "--network", RNN], "--network: parity labels the whole sequence"),
    (["--task", "running-parity", "--network", "embedding:4,v2;flatten;dense:2"],
     "--network: running-parity labels every step"),
    (["--task", "parity", "--network", "flatten;dense:2"], "--network: parity feeds tokens 0 and 1"),
    (["--task", "parity", "--network", "embedding:4,v2;flatten;dense:3"], "--network: the network ends"),
    (["--task", "parity", "--network", "bogus"], "--network: layer 'bogus'"),
    (["--task", "parity", "--network", "embedding:4,v2;attention:h3;flatten;dense:2"], "--network: attn1"),
    (["--task", "parity", "--datasets", "digits"], "--datasets: --task parity generates its sequences"),
    (["--length", "5"], "--length: applies to a sequence task"),
    (["--task", "digits", "--length", "5"], "--length: applies to a sequence task"),
    (["--task", "running-parity", "--length", "0"], "--length: 0 is not a sequence length"),
    (["--task", "parity", "--hidden", "5"], "--hidden: applies to the MLP"),
    (["--task", "parity", "--loss", "mse"], "--loss: applies to the MLP"),
    (["--task", "parity", "--rules", "derived,seed-literal"], "--rules: unknown 'seed-literal'"),
    (["--task", "parity", "--lrs", "-0.1"], "--lrs: -0.1 is not a positive"),
    (["--task", "copy"], "argument --task: invalid choice: 'copy'"),
])
def test_bad_task_options_exit_two_naming_the_option(argv, message, tmp_path):
    assert message in run_cli(["train", *argv, "--out", str(tmp_path)], 2)
    assert not any(tmp_path.iterdir())


def test_the_plot_tells_any_number_of_rules_apart(tmp_path):
    """Four line styles, then markers: six rules plot (a fifth rule once had no style)."""
    from bpcheck.cli.plots import plot_curves
    from bpcheck.core.training import Curve

    curves = [Curve("parity", f"rule{i}", 0.1, [1.0, 0.5], [0.5, 0.9], [0.5, 0.8]) for i in range(6)]
    path = plot_curves(curves, "parity", tmp_path / "parity.png")
    assert path.stat().st_size > 0
