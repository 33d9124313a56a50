"""Hostile command lines (issue 31): each run as a user runs it (``tests.user_run``), a usage
error naming the option (exit 2) before any work, or a run that finishes and says what happened;
never a traceback, a RuntimeWarning or a half-written file."""

from __future__ import annotations

import argparse
import csv
import io
import json
import time
from pathlib import Path

import pytest
from rich.console import Console

from bpcheck.cli.progress import progress
from bpcheck.cli.train import curves_table
from bpcheck.cli.verify import _seconds
from bpcheck.layers.compare import DERIVED, compare_stack
from bpcheck.layers.problem import random_problem
from manual.stack import Stack
from tests.user_run import run_user

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# --- 1. a diverging run keeps the others, and the report says where it stopped ---------------


def test_a_diverging_learning_rate_stops_its_curve_and_keeps_the_others(tmp_path):
    ran = run_user(["train", "--datasets", "iris", "--epochs", "3", "--lrs", "0.01,1e308", "--out", "out"],
                   tmp_path, 0)
    assert "diverged in epoch 1" in ran.out
    curves = json.loads((tmp_path / "out" / "curves.json").read_text())
    by_lr = {(c["rule"], c["lr"]): c for c in curves}
    assert len(by_lr) == 4  # derived and seed-literal, each at both rates
    for rule in ("derived", "seed-literal"):
        assert by_lr[(rule, 0.01)]["diverged"] is None and len(by_lr[(rule, 0.01)]["loss"]) == 3
        assert by_lr[(rule, 1e308)]["diverged"] == 1 and by_lr[(rule, 1e308)]["loss"] == []
    rows = list(csv.DictReader((tmp_path / "out" / "curves.csv").read_text().splitlines()))
    stopped = [row for row in rows if row["diverged"]]
    assert [(row["rule"], row["epoch"]) for row in stopped] == [("derived", "1"), ("seed-literal", "1")]
    assert (tmp_path / "out" / "iris.png").stat().st_size > 0


def test_a_diverging_network_of_layers_keeps_the_other_rates(tmp_path):
    ran = run_user(["train", "--network", "flatten;dense:10", "--rules", "derived", "--epochs", "2",
                    "--lrs", "0.1,1e308", "--out", "out"], tmp_path, 0)
    assert "derived, η=1e+308 diverged in epoch 1" in ran.out
    curves = {c["lr"]: c for c in json.loads((tmp_path / "out" / "curves.json").read_text())}
    assert curves[0.1]["diverged"] is None and len(curves[0.1]["loss"]) == 2
    assert curves[1e308]["diverged"] == 1


# --- 2. every output path is checked before any work ------------------------------------------

BAD_FILES = [("missing/x{ext}", "the directory missing does not exist"),
             ("folder", "it is a directory"),
             ("/proc/bpcheck-x{ext}", "no file can be made in /proc"),
             ("x.txt", "expected a file ending in"),
             ("x{ext}/", "it is a directory")]


@pytest.mark.parametrize(("command", "option", "ext"), [
    (["report", "derived"], "--html", ".html"), (["report", "derived"], "--markdown", ".md"),
    (["sweep", "derived"], "--out", ".png"), ([], "--json", ".json")])
@pytest.mark.parametrize(("path", "reason"), BAD_FILES)
def test_a_bad_output_file_is_refused_before_the_work(tmp_path, command, option, ext, path, reason):
    (tmp_path / "folder").mkdir()
    ran = run_user([*command, option, path.format(ext=ext)], tmp_path, 2)
    assert f"argument {option}: cannot write" in ran.err and reason in ran.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]  # nothing written


def test_sweep_out_without_an_extension_is_refused_not_renamed(tmp_path):
    ran = run_user(["sweep", "derived", "--out", "adir"], tmp_path, 2)
    assert "argument --out: cannot write adir: expected a file ending in .png or .pdf or .svg" in ran.err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("path", "reason"), [
    ("afile", "cannot write into afile: it is a file, not a directory"),
    ("missing/out", "cannot make missing/out: the directory missing does not exist"),
    ("/proc/bpcheck-out", "cannot make /proc/bpcheck-out")])
def test_train_out_is_refused_before_training(tmp_path, path, reason):
    (tmp_path / "afile").write_text("mine")
    ran = run_user(["train", "--out", path], tmp_path, 2)
    assert f"argument --out: {reason}" in ran.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
    assert (tmp_path / "afile").read_text() == "mine"


def test_train_out_holding_a_folder_where_a_file_goes_is_refused(tmp_path):
    (tmp_path / "out" / "curves.csv").mkdir(parents=True)
    ran = run_user(["train", "--out", "out"], tmp_path, 2)
    assert "--out: cannot write out/curves.csv: it is a directory" in ran.out


def test_what_was_written_is_said_exactly(tmp_path):
    ran = run_user(["sweep", "derived", "--repeats", "1", "--out", "plot.svg"], tmp_path, 0)
    assert ran.out.endswith("wrote plot.svg")
    assert [p.name for p in tmp_path.iterdir()] == ["plot.svg"]


# --- 3. scales the dtype cannot hold ------------------------------------------------------------


@pytest.mark.parametrize(("options", "message"), [
    (["--lr", "1e308"], "--lr 1e+308: 1 step of η·max(|∂L/∂θ|, 1)"),
    (["--lr", "1e308", "--optimizer", "adam"], "--lr 1e+308: 10 steps of η·max(|∂L/∂θ|, 1)"),
    (["--lr", "1e300", "--dtype", "float32"], "--lr 1e+300: 1 step"),
    (["--lr", "1e200"], "--lr 1e+200: 1 step"),  # finite, but its square is not
    (["--network", "flatten;dense:3", "--lr", "1e308"], "--lr 1e+308: 1 step"),
    (["--l2", "1e308"], "--l2 1e+308: the penalty λ/2 Σ‖W‖² or its gradient λW reaches"),
    (["--l2", "1e100"], "--l2 1e+100: the penalty's gradient λW (up to 5.57e+99) drowns the data's"),
])
def test_a_scale_the_dtype_cannot_hold_is_refused(tmp_path, options, message):
    ran = run_user(options, tmp_path, 2)
    assert message in ran.out and "use " in ran.out


# --- 4. sizes that cannot fit in memory -------------------------------------------------------


@pytest.mark.parametrize(("argv", "message"), [
    (["--network", "flatten;dense:100000000"], "--network 'flatten;dense:100000000' on --input-shape "
                                               "1,8,8 with --samples 8: needs about"),
    (["--network", "conv2d:2;flatten;dense:3", "--input-shape", "1,100000,100000"], "--input-shape"),
    (["train", "--task", "parity", "--length", "100000"], "--network on --length 100000"),
    (["train", "--network", "flatten;dense:100000000;dense:10"], "--network (evaluated on digits'"),
    (["--layers", "99999999999999999999,3", "--data", "random"], "--layers with --samples 8: needs about"),
    (["verify", f"{EXAMPLES / 'batch_classifier.py'}:classifier_rule", "--layers", "99999999999999999999,3"],
     "--layers with up to 8 samples: needs about"),  # before: a TypeError from inside the check, exit 1
])
def test_a_size_beyond_memory_is_refused_with_an_estimate(tmp_path, argv, message):
    ran = run_user(argv, tmp_path, 2)
    assert message in ran.text and "GiB of memory" in ran.text and "available" in ran.text


@pytest.mark.parametrize("argv", [["--input-shape", "-1,8,8"], ["--input-shape=-1,8,8"]])
def test_a_negative_input_shape_reaches_its_validator(tmp_path, argv):
    ran = run_user(["--network", "flatten;dense:3", *argv], tmp_path, 2)
    assert "argument --input-shape: expected C,H,W, T,D or F of positive integers, got '-1,8,8'" in ran.err


# --- 5. long work shows it is alive; unbounded work is refused --------------------------------


@pytest.mark.parametrize(("argv", "most"), [
    (["optim", "--steps", "100000000"], 1000), (["--optimizer", "sgd", "--steps", "100000000"], 100),
    (["verify", "any:rule", "--examples", "100000000"], 100000),
    (["mutants", "--examples", "100000000"], 100000), (["train", "--epochs", "100000000"], 1000),
    (["report", "derived", "--html", "r.html", "--epochs", "100000000"], 1000),
    (["sweep", "derived", "--repeats", "100000000"], 1000)])
def test_counts_are_bounded(tmp_path, argv, most):
    """--examples, --epochs and --repeats had no bound: 10¹² was taken, and ran for ever."""
    ran = run_user(argv, tmp_path, 2)
    assert f"argument {argv[-2]}: must be an integer from 1 to {most}, got 100000000" in ran.err


@pytest.mark.parametrize(("argv", "message"), [
    (["optim", "--seed", "-5"], "argument --seed: must be an integer >= 0, got -5"),  # a traceback
    (["mutants", "--seed", "-1"], "argument --seed: must be an integer >= 0, got -1"),  # ran
    (["train", "--seed", "-1"], "argument --seed: must be an integer >= 0, got -1"),
    (["--network", ""], "--network: network='': expected layers separated by ';'"),
    (["train", "--hidden", "0"], "--hidden: sizes[1]=0: every layer needs width >= 1"),
])
def test_a_bad_seed_network_or_width_is_a_usage_error_naming_its_option(tmp_path, argv, message):
    assert message in run_user(argv, tmp_path, 2).text


@pytest.mark.parametrize(("text", "seconds"), [("inf", None), ("1e400", None), ("1e300", None), ("2.5", 2.5)])
def test_a_time_limit_of_inf_is_no_limit(text, seconds):
    assert _seconds(text) == seconds


@pytest.mark.parametrize("text", ["nan", "0", "-1", "1e-300", "abc", ""])
def test_a_time_limit_that_is_no_number_of_seconds_is_refused_accurately(text):
    """Before: inf was refused as not "> 0"."""
    with pytest.raises(argparse.ArgumentTypeError, match=r"seconds >= 0.01, or inf for no limit"):
        _seconds(text)


# --- 6. options that would be ignored, repeated or contradict each other ---------------------


@pytest.mark.parametrize(("argv", "message"), [
    (["--samples", "5"], "--samples 5: iris has its own training split of 100 samples"),
    (["--rules", "derived,derived"], "argument --rules: 'derived' named twice"),
    (["report", "derived", "--rules", "derived,derived", "--html", "r.html"], "'derived' named twice"),
    (["train", "--rules", "derived,derived"], "--rules: 'derived' given twice"),
    (["train", "--lrs", "0.1,0.1"], "--lrs: 0.1 given twice"),
    (["train", "--datasets", "iris,iris"], "--datasets: 'iris' given twice"),
    (["--network", "conv2d:8,k3,k5;flatten;dense:3"], "'k3' and 'k5' set the same option"),
])
def test_an_option_that_would_be_ignored_or_repeated_is_refused(tmp_path, argv, message):
    ran = run_user(argv, tmp_path, 2)
    assert message in ran.text
    assert list(tmp_path.iterdir()) == []


def test_without_a_terminal_long_work_prints_a_line_every_few_seconds():
    console = Console(file=io.StringIO(), force_terminal=False, width=200)
    with progress(console, "training", 4, every=0.05) as shown:
        shown.advance()
        time.sleep(0.3)
        shown.phase("finite differences (entries)", 22, 500)
        time.sleep(0.3)
    lines = console.file.getvalue().splitlines()
    assert lines[0].startswith("… training: 1/4 after 0 s")
    assert any(line.startswith("… finite differences (entries): 22/500 after 0 s") for line in lines)
    assert 6 <= len(lines) <= 13  # one per 0.05 s of the 0.6 s, give or take a scheduler's tick
    time.sleep(0.2)
    assert len(console.file.getvalue().splitlines()) == len(lines)  # it stops with the work


def test_a_check_of_a_network_reports_its_phases_and_entries():
    phases = []
    problem = random_problem(Stack("conv2d:2;relu;flatten;dense:3", (1, 5, 5)), 2, seed=0)
    compare_stack(problem, [DERIVED], fd_sample=30,
                  progress=lambda what, done, total: phases.append((what, done, total)))
    names = list(dict.fromkeys(what for what, _, _ in phases))
    assert names == ["torch's and jax's gradients and step",
                     "finite differences (projections)", "finite differences (entries)",
                     "the rounding allowances", "comparing the rules (derived)"]
    assert ("finite differences (entries)", 30, 30) in phases


def test_a_curve_that_diverges_late_ends_with_its_last_finite_epoch(tmp_path):
    """relu then identity at η = 0.7 grows the loss about 10¹⁵ an epoch until it overflows in
    epoch 20; the plot shows log₁₀ L (a log axis to 1e300 overflows matplotlib's ticks)."""
    ran = run_user(["train", "--datasets", "iris", "--rules", "derived", "--activations", "relu,identity",
                    "--epochs", "20", "--lrs", "0.001,0.7", "--out", "out"], tmp_path, 0)
    assert ("η=0.7 diverged in epoch 20 (a step or the loss overflowed the dtype): its curve ends "
            "with epoch 19") in ran.out
    curves = {c["lr"]: c for c in json.loads((tmp_path / "out" / "curves.json").read_text())}
    late = curves[0.7]
    assert late["diverged"] == 20 and len(late["loss"]) == 19 and late["loss"][-1] > 1e290
    assert curves[0.001]["diverged"] is None and len(curves[0.001]["loss"]) == 20


@pytest.mark.parametrize("count", ["0", "-1"])
def test_mutants_refuses_a_count_of_examples_below_one(tmp_path, count):
    """Before: Hypothesis' InvalidArgument traceback, which never named --examples."""
    ran = run_user(["mutants", f"--examples={count}"], tmp_path, 2)
    assert "--examples" in ran.err and "must be an integer from 1 to 100000" in ran.err


@pytest.mark.parametrize(("epochs", "title"), [(1, "after 1 epoch (same"), (2, "after 2 epochs (same")])
def test_the_training_table_counts_its_epochs_in_words(epochs, title):
    """Before: "after 1 epochs"."""
    assert curves_table([], [], epochs, shared=True).title.startswith(title)
