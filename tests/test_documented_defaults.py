"""Every default the README documents for the ``--network`` grammar (its tables of layers and
sequence layers) and for the commands' options, tested by its effect: the default gives exactly
what the value spelled out gives, and another value gives something else (so a changed default
fails here, not just a changed literal)."""

from __future__ import annotations

import numpy as np
import pytest

from bpcheck.cli import train
from bpcheck.cli.options import build_parser
from bpcheck.layers.compare import DERIVED
from bpcheck.layers.problem import random_problem
from manual import stack_network
from manual.stack import Stack, param_shapes


def outcome(stack: Stack, problem) -> tuple:
    """What a network does with a problem's arrays: each layer's output shape, the gradients, the
    SGD step and the running statistics."""
    grads, new, running = stack_network.sgd_step(stack, problem.params, problem.buffers, problem.x, problem.y,
                                                 problem.lr, problem.masks, DERIVED.pairs)
    return stack.shapes, grads, new, running


def same(a: tuple, b: tuple) -> bool:
    shapes_a, *dicts_a = a
    shapes_b, *dicts_b = b
    return shapes_a == shapes_b and all(
        da.keys() == db.keys() and all(np.array_equal(da[k], db[k]) for k in da)
        for da, db in zip(dicts_a, dicts_b, strict=True))


HEAD = ";flatten;dense:3"
#: (layers with a default, the default spelled out, another value, one sample's shape).
GRAMMAR = [
    ("conv2d:4", "conv2d:4,k3", "conv2d:4,k2", (1, 8, 8)),  # kernel 3
    ("conv2d:4", "conv2d:4,s1", "conv2d:4,s2", (1, 8, 8)),  # stride 1
    ("conv2d:4,k5", "conv2d:4,k5,s1", "conv2d:4,k5,s2", (1, 8, 8)),  # stride 1 whatever the kernel
    ("conv2d:4", "conv2d:4,p0", "conv2d:4,p1", (1, 8, 8)),  # no padding
    ("conv2d:4", "conv2d:4,d1", "conv2d:4,d2", (1, 8, 8)),  # dilation 1
    ("conv2d:4", "conv2d:4", "conv2d:4,nobias", (1, 8, 8)),  # a bias
    ("max_pool2d", "max_pool2d:k2", "max_pool2d:k3", (2, 9, 9)),  # kernel 2
    ("max_pool2d", "max_pool2d:k2,s2", "max_pool2d:k2,s1", (2, 9, 9)),  # stride = kernel
    ("max_pool2d:k3", "max_pool2d:k3,s3", "max_pool2d:k3,s1", (2, 9, 9)),
    ("max_pool2d:k2x3", "max_pool2d:k2x3,s2x3", "max_pool2d:k2x3,s2", (2, 9, 9)),  # per axis
    ("avg_pool2d", "avg_pool2d:k2,s2", "avg_pool2d:k3", (2, 9, 9)),
    ("avg_pool2d:k3", "avg_pool2d:k3,s3", "avg_pool2d:k3,s1", (2, 9, 9)),
    ("batch_norm", "batch_norm:m0.1", "batch_norm:m0.2", (2, 4, 4)),  # momentum 0.1
    ("batch_norm", "batch_norm:e1e-5", "batch_norm:e1e-2", (2, 4, 4)),  # ε 1e-5
    ("layer_norm", "layer_norm:e1e-5", "layer_norm:e1e-2", (2, 4, 4)),
    ("dropout", "dropout:p0.5", "dropout:p0.25", (2, 4, 4)),  # drop probability 0.5
    ("flatten;dense:5", "flatten;dense:5", "flatten;dense:5,nobias", (2, 4, 4)),  # a bias
    ("embedding:4,v3;rnn:5", "embedding:4,v3;rnn:5", "embedding:4,v3;rnn:5,nobias", (6,)),
    ("embedding:4,v3;lstm:5", "embedding:4,v3;lstm:5", "embedding:4,v3;lstm:5,nobias", (6,)),
    ("embedding:4,v3;gru:5", "embedding:4,v3;gru:5", "embedding:4,v3;gru:5,nobias", (6,)),
    ("embedding:4,v3;attention", "embedding:4,v3;attention:h1", "embedding:4,v3;attention:h2", (6,)),
    ("embedding:4,v3;attention", "embedding:4,v3;attention", "embedding:4,v3;attention:causal", (6,)),
    ("embedding:4,v3;attention", "embedding:4,v3;attention", "embedding:4,v3;attention:noproj", (6,)),
    ("embedding:4,v3;attention", "embedding:4,v3;attention", "embedding:4,v3;attention:nobias", (6,)),
]


@pytest.mark.parametrize(("default", "spelled", "other", "shape"), GRAMMAR)
def test_a_grammar_default_acts_as_documented(default, spelled, other, shape):
    stacks = [Stack(text + HEAD, shape) for text in (default, spelled, other)]
    problem = random_problem(stacks[0], 4, seed=1)
    results = [outcome(stacks[0], problem), outcome(stacks[1], problem)]
    assert same(*results), f"{default} does not act as {spelled}"
    if param_shapes(stacks[2]) == param_shapes(stacks[0]) and stacks[2].shapes == stacks[0].shapes:
        assert not same(results[0], outcome(stacks[2], problem)), f"{other} acts as the default {default}"
    # otherwise the other value already builds another network: its shapes differ


def test_the_grammar_defaults_shape_the_documented_outputs():
    """conv2d:4 on 8x8 is a 3x3 convolution of stride 1 (6x6 out); a pool halves (kernel 2, stride 2)."""
    assert Stack("conv2d:4" + HEAD, (1, 8, 8)).shapes[0] == (4, 6, 6)
    assert param_shapes(Stack("conv2d:4" + HEAD, (1, 8, 8)))["conv1.W"] == (4, 1, 3, 3)
    assert Stack("max_pool2d" + HEAD, (1, 8, 8)).shapes[0] == (1, 4, 4)
    assert Stack("avg_pool2d:k3" + HEAD, (1, 9, 9)).shapes[0] == (1, 3, 3)


def parsed(argv: list[str]) -> dict:
    args = vars(build_parser().parse_args(argv))
    args.pop("given")
    return args


def test_the_main_commands_documented_defaults_are_the_values_spelled_out():
    """README: --samples 8, --lr 0.001, --seed 0, --bias node, --layout cols, --dtype float64,
    --data auto, --finite-differences auto, --l2 0; the rest (None) are filled by the mode."""
    spelled = ["--samples", "8", "--lr", "0.001", "--seed", "0", "--bias", "node", "--layout", "cols",
               "--dtype", "float64", "--data", "auto", "--finite-differences", "auto", "--l2", "0"]
    assert parsed([]) == parsed(spelled)
    for option, other in [("--samples", "9"), ("--lr", "0.01"), ("--seed", "1"), ("--bias", "vector"),
                          ("--layout", "rows"), ("--dtype", "float32"), ("--data", "random"),
                          ("--finite-differences", "off"), ("--l2", "0.1")]:
        assert parsed([option, other]) != parsed([]), option


@pytest.mark.parametrize(("mode", "spelled"), [
    ([], ["--datasets", "iris,digits", "--rules", "derived,seed-literal", "--lrs", "0.001,0.01,0.1",
          "--batch", "10", "--epochs", "30", "--seed", "0", "--out", "bpcheck-train"]),
    (["--network", train.DIGITS_CNN], ["--datasets", "digits", "--rules", "derived,max_pool_spread",
                                       "--lrs", "0.03,0.1,0.3", "--batch", "32", "--epochs", "30"]),
    (["--task", "digits"], ["--network", "conv2d:8,k3,p1;relu;max_pool2d:k2;flatten;dense:10"]),
    (["--task", "running-parity"], ["--network", "embedding:8,v2;rnn:16;dense:2", "--length", "20",
                                    "--lrs", "0.3", "--epochs", "30", "--batch", "32",
                                    "--rules", "derived,rnn_hidden_not_carried,rnn_bptt_one_step"]),
])
def test_train_defaults_are_the_values_spelled_out(tmp_path, monkeypatch, mode, spelled):
    """``bpcheck train``'s defaults per mode (README: What the error costs; Training a CNN on
    digits; Training sequence models) give the same run as the values spelled out."""
    monkeypatch.chdir(tmp_path)

    def run(argv: list[str]) -> dict:
        args = vars(train.parse(argv, ""))
        args.pop("given")
        return args
    assert run(mode) == run([*mode, *spelled])
