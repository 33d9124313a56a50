"""``bpcheck --network``: the report for a network of layers, from the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.assertions import run_cli

SMALL = ["--network", "conv2d:3,k3,p1;relu;max_pool2d:k2;flatten;dense:3", "--input-shape", "1,6,6",
         "--samples", "3"]


def test_a_small_cnn_agrees_with_every_witness_and_exits_zero(tmp_path):
    out = run_cli([*SMALL, "--json", str(tmp_path / "r.json")], 0)
    assert "network conv2d:3,k3,s1,p1,d1;relu;max_pool2d:k2,s2;flatten;dense:3 on 1x6x6" in out
    assert "finite differences: along 2 random directions of each parameter" in out
    assert "derived: agrees with every witness" in out
    assert "witnesses agree among themselves (torch, jax, finite differences)" in out
    for row in ("conv1.W 3×1×3×3 consistency own forward", "x 3×1×6×6 gradient·w numeric"):
        assert row in out
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["exit_code"] == 0 and saved["rules"][0]["verdict"] == "agrees"


def test_a_chosen_mutant_differs_and_its_cause_is_named():
    out = run_cli([*SMALL, "--rules", "derived,conv_flipped_kernel", "--finite-differences", "off"], 0)
    assert "conv_flipped_kernel: differs on x, as expected of a known-wrong rule" in out
    assert "conv1 (conv2d) x" in out
    assert "the kernel flipped (convolution taken for cross-correlation)" in out
    assert "finite differences: off" in out


def test_a_bias_before_batch_norm_is_inconclusive_with_the_reason_and_exits_three():
    out = run_cli(["--network", "conv2d:2,k3;batch_norm;relu;flatten;dense:2", "--input-shape", "1,5,5",
                   "--finite-differences", "off"], 3)
    assert ("derived: inconclusive — no witness could settle conv1.b: the exact gradient of conv1.b is "
            "zero up to rounding") in out
    assert "nobias" in out


@pytest.mark.parametrize(("options", "message"), [
    (["--network", "dense:3"],
     r"dense1 \(dense\) needs samples of shape \(F,\) or \(T, D\): add flatten before it"),
    (["--network", "conv2d:4,k9;flatten;dense:2"], "does not fit its 8x8 input"),
    (["--network", "conv2d:4;flatten;dense:2", "--layers", "4,3"], "--layers describes an MLP"),
    (["--network", "flatten;dense:2", "--rules", "seed-literal"], "--rules: unknown"),
    (["--network", "flatten;dense:2", "--input-shape", "0,4"], "--input-shape: expected C,H,W, T,D or F"),
    (["--input-shape", "1,8,8"], "--input-shape needs --network"),
    (["--network", "flatten;dense:2", "--steps", "3"], "--steps describes an MLP"),
    (["--network", "dense:4;batch_norm;dense:2", "--input-shape", "3", "--samples", "1"],
     "--samples 1: x has 1 sample: bn1 .batch_norm. would normalise 1 value"),
    (["diagnose", "seed-literal", "--input-shape", "1,8,8"], "--input-shape needs --network"),
])
def test_bad_network_options_exit_two_with_a_message(options, message):
    import re

    out = run_cli(options, 2)
    assert re.search(message, out), out


def test_a_mutant_of_a_kind_the_network_lacks_is_said_to_be_the_derived_rule():
    out = run_cli(["--network", "embedding:3,v4;lstm:2;dense:2", "--input-shape", "4", "--samples", "2",
                   "--rules", "derived,rnn_hidden_not_carried", "--finite-differences", "off"], 0)
    assert ("the network has no rnn layer, so rnn_hidden_not_carried is exactly derived on it: it gets "
            "derived's verdict") in out


LAYERED_USAGE = [  # (argv, what the message names)
    (["mutants", "--network", "nonesuch:3"], "--network: layer 'nonesuch:3': unknown layer 'nonesuch'"),
    (["mutants", "--network", "relu;flatten;dense:2", "--input-shape", "4"],
     "--network 'relu;flatten;dense:2' has no layer a layer mutant changes"),
    (["mutants", "--network", "--input-shape", "1,4,4"], "--input-shape describes --network LAYERS"),
    (["mutants", "--network", "conv2d:4096,k3,p1;conv2d:4096,k3,p1;flatten;dense:2", "--input-shape",
      "3,224,224"], "(batches up to 4): needs about 181 GiB of memory"),
    (["mutants", "--input-shape", "1,4,4"], "--input-shape needs --network"),
    (["diagnose", "nonesuch", "--network", "conv2d:2,k3"], "unknown rule 'nonesuch' for --network"),
    (["diagnose", "sign-flip", "--network", "conv2d:2,k3"], "unknown rule 'sign-flip' for --network"),
    (["diagnose", "conv_flipped_kernel", "--network", "nonesuch:3"], "--network: layer 'nonesuch:3'"),
    (["diagnose", "conv_flipped_kernel", "--network", "conv2d:2,k3;flatten;dense:2", "--layers", "3,3"],
     "--layers describes an MLP"),
    (["diagnose", "max_pool_spread", "--network", "conv2d:2,k3;flatten;dense:2"],
     "the network has no max_pool2d layer, so max_pool_spread is exactly derived on it"),
]


@pytest.mark.parametrize(("argv", "message"), LAYERED_USAGE,
                         ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_layer_mutant_options_exit_two_naming_the_argument_before_any_work(argv, message):
    """`mutants --network` and `diagnose --network`: exit 2 and the message, in a process that
    has loaded no witness framework (no witness asked)."""
    code = ("import sys, contextlib, io\nfrom bpcheck.cli import main\nout = io.StringIO()\n"
            "with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):\n"
            f"    code = main({argv!r})\n"
            "print(code, sorted({'torch', 'jax'} & set(sys.modules)))\n"
            "print(' '.join(out.getvalue().split()))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    status, text = result.stdout.splitlines()[:2]
    assert status == "2 []", result.stdout
    assert message in text, text


def test_mutants_on_a_given_network_hunt_each_mutant_its_draws_can_show():
    """On a 3×3 convolution at stride 1, dilation 1: the flipped kernel and the cropped corner are
    caught; the stride and dilation mistakes change nothing there, so they are not hunted."""
    out = run_cli(["mutants", "--network", "conv2d:2,k3,p1;relu;flatten;dense:2", "--input-shape", "1,4,4",
                   "--examples", "1"], 0)
    assert "conv_flipped_kernel ∂L/∂x through the kernel flipped" in out
    for name in ("conv_stride_ignored", "conv_dilation_ignored"):
        assert f"{name}: not hunted — all " in out and "where the mistake changes nothing" in out
    assert "all 2 hunted mutants caught (2 not hunted)" in out and "max_pool_spread" not in out


def test_mutants_on_a_network_none_of_their_mistakes_touches_exit_three():
    out = run_cli(["mutants", "--network", "conv2d:1,k1;flatten;dense:2", "--input-shape", "1,2,2",
                   "--examples", "1"], 3)
    assert "no mutant's mistake changes anything on this network: none hunted" in out


def test_mutants_take_the_comparisons_finite_difference_words():
    """--finite-differences takes off, auto or all, as the comparison does (it was a bare flag);
    sample:K, one network's entries, is refused for a hunt of many."""
    out = run_cli(["mutants", "--network", "conv2d:2,k3,p1;relu;flatten;dense:3", "--input-shape", "1,4,4",
                   "--examples", "1", "--finite-differences", "auto"], 0)
    assert "caught" in out
    assert "sample:3 samples one network's entries; a hunt draws many: give off, auto or all" in run_cli(
        ["mutants", "--finite-differences", "sample:3"], 2)
    assert "argument --finite-differences" in run_cli(["mutants", "--finite-differences", "some"], 2)
