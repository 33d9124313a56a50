"""``bpcheck train``: train with each rule from the same start in the same order; curves to
CSV, JSON and PNG. The MLP of ``manual.spec`` on iris and digits (``bpcheck.train``), or with
``--network`` a network of layers on digits' 8×8 images (``bpcheck.train_layers``)."""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
from rich import box
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bpcheck.cli.options import described
from bpcheck.cli.plots import plot_curves
from bpcheck.datasets import DATASETS, split
from bpcheck.train import Curve, seed_program_spec, train_curve
from bpcheck.train_layers import (
    DIGITS_CNN,
    STACK_RULES,
    digits_stack,
    initial_weights,
    train_stack_curve,
    untouched_by,
)
from manual.initialisers import truncated_normal
from manual.rules import RULES
from manual.spec import LOSSES
from manual.stack_checks import check_batch_norm_counts

#: Defaults that differ between the MLP and ``--network``: (MLP, network of layers).
DEFAULTS = {"datasets": ("iris,digits", "digits"),
            "rules": ("derived,seed-literal", "derived,max_pool_spread"),
            "lrs": ((0.001, 0.01, 0.1), (0.03, 0.1, 0.3)), "batch": (10, 32)}


@dataclass(frozen=True)
class Run:
    """One curve to train: ``train(on_epoch)`` returns it."""

    dataset: str
    network: str  # as the table shows it
    rule: str
    lr: float
    train: Callable[[Callable[[], None]], Curve]


def write_curves(curves: list[Curve], out: Path) -> tuple[Path, Path]:
    """curves.csv (one row per epoch) and curves.json."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / "curves.csv", out / "curves.json"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dataset", "rule", "lr", "epoch", "loss", "train_accuracy", "test_accuracy"])
        for c in curves:
            for epoch, row in enumerate(zip(c.loss, c.train_accuracy, c.test_accuracy, strict=True), 1):
                writer.writerow([c.dataset, c.rule, c.lr, epoch, *row])
    json_path.write_text(json.dumps([asdict(c) for c in curves], indent=1))
    return csv_path, json_path


def parse(argv: list[str], doc: str) -> argparse.Namespace:
    """The options, with the defaults of the mode (MLP or ``--network``) filled in."""
    def numbers(text: str, kind=float) -> tuple:
        try:
            return tuple(kind(part) for part in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None

    parser = argparse.ArgumentParser(prog="bpcheck train", description=described(doc))
    parser.add_argument("--network", default=None, metavar="LAYERS",
                        help="a network of layers to train on digits' 8x8 images instead of the MLP, "
                             f"e.g. {DIGITS_CNN!r} (manual.stack's text form; it must end with 10 outputs)")
    parser.add_argument("--datasets", default=None,
                        help=f"from {list(DATASETS)} (default iris,digits; with --network only digits)")
    parser.add_argument("--rules", default=None,
                        help=f"from {list(RULES)} (default derived,seed-literal); with --network from "
                             f"{list(STACK_RULES)} (default derived,max_pool_spread)")
    parser.add_argument("--lrs", type=numbers, default=None,
                        help="learning rates (default 0.001,0.01,0.1; with --network 0.03,0.1,0.3)")
    parser.add_argument("--epochs", type=int, default=30, help="default 30")
    parser.add_argument("--batch", type=int, default=None,
                        help="mini-batch size (default 10; 32 with --network)")
    parser.add_argument("--hidden", type=lambda t: numbers(t, int), default=None,
                        help="hidden widths, e.g. 16 or 8,8 (default: the seed's formula); not with "
                             "--network")
    parser.add_argument("--activations", default=None, metavar="A,…",
                        help="one per layer after the input (default: sigmoid everywhere); not with "
                             "--network")
    parser.add_argument("--loss", default=None, choices=list(LOSSES),
                        help="default half-sse; with --network softmax-ce-labels, averaged (not settable)")
    parser.add_argument("--seed", type=int, default=0,
                        help="data split, initial weights, order, dropout masks")
    parser.add_argument("--out", type=Path, default=Path("bpcheck-train"), help="output directory")
    args = parser.parse_args(argv)
    for name, defaults in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, defaults[args.network is not None])
    return args


def problems_with(args: argparse.Namespace) -> list[str]:
    """What is wrong with the options, each naming its option."""
    datasets, rules, layered = args.datasets.split(","), args.rules.split(","), args.network is not None
    known = STACK_RULES if layered else RULES
    problems = [f"--datasets: unknown {d!r}" for d in datasets if d not in DATASETS]
    if layered:
        problems += [f"--datasets: --network trains on digits only, not {d!r}"
                     for d in datasets if d in DATASETS and d != "digits"]
        problems += [f"{option}: applies to the MLP, not with --network"
                     for option in ("--hidden", "--activations", "--loss")
                     if getattr(args, option[2:]) is not None]
    problems += [f"--rules: unknown {r!r}" for r in rules if r not in known]
    if layered and not set(rules) <= known.keys():  # the names it takes, after the last unknown
        problems[-1] += f" (with --network: one of {list(known)})"
    problems += [f"--lrs: {lr} is not a positive learning rate" for lr in args.lrs if not lr > 0]
    problems += ["--epochs and --batch must be ≥ 1"] if min(args.epochs, args.batch) < 1 else []
    return problems


def mlp_runs(args: argparse.Namespace) -> tuple[list[Run], list[str]]:
    """Every (dataset, rule, η) of the MLP, and the rules that cannot run; ValueError for a
    network the options do not describe."""
    runs, skipped = [], []
    activations = tuple(args.activations.split(",")) if args.activations else None
    for name in args.datasets.split(","):
        data = split(name, args.seed)
        spec = seed_program_spec(data, args.hidden, args.seed, activations, args.loss or "half-sse")
        start = truncated_normal(spec, np.random.default_rng(args.seed))
        for rule in (RULES[r] for r in args.rules.split(",")):
            if rule.unsupported_reason(spec):
                skipped.append(f"{rule.name} on {name}: {rule.unsupported_reason(spec)}")
                continue
            runs += [Run(name, "-".join(map(str, spec.sizes)), rule.name, lr,
                         partial(train_curve, rule, spec, start, data, lr, args.epochs, args.batch, args.seed,
                                 name))
                     for lr in args.lrs]
    return runs, skipped


def network_runs(args: argparse.Namespace) -> tuple[list[Run], list[str]]:
    """Every (rule, η) of ``--network`` on digits, and the mutants that would train exactly as
    the derived rule; ValueError naming the option for a network that cannot train on digits."""
    try:
        stack = digits_stack(args.network)
    except ValueError as error:
        raise ValueError(f"--network: {error}") from None
    data = split("digits", args.seed)
    if stack.classes != data.classes:
        raise ValueError(f"--network: the network ends with {stack.classes} outputs; digits has "
                         f"{data.classes} classes (end it with dense:{data.classes})")
    smallest = data.X_train.shape[1] % args.batch or args.batch  # the last batch of an epoch
    try:
        check_batch_norm_counts(stack, smallest)
    except ValueError as error:
        raise ValueError(f"--batch: a batch of {smallest} sample{'s' * (smallest != 1)}: {error}") from None
    params, buffers = initial_weights(stack, args.seed)
    runs, skipped = [], []
    for rule in (STACK_RULES[r] for r in args.rules.split(",")):
        if untouched_by(rule, stack):
            skipped.append(untouched_by(rule, stack))
            continue
        runs += [Run("digits", " ".join(args.network.replace(";", "; ").split()), rule.name, lr,
                     partial(train_stack_curve, rule, stack, params, buffers, data, lr, args.epochs,
                             args.batch, args.seed, "digits"))
                 for lr in args.lrs]
    return runs, skipped


def main(argv: list[str], console: Console) -> int:
    """``bpcheck train``: train with each rule, same start and order, and plot the curves."""
    args = parse(argv, main.__doc__)
    problems = problems_with(args)
    if not problems:
        try:
            runs, skipped = (network_runs if args.network is not None else mlp_runs)(args)
        except ValueError as error:
            problems = [str(error)]
    if problems:
        console.print("[bold red]bpcheck train: error:[/] " + "; ".join(problems))
        return 2
    curves = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("training", total=len(runs) * args.epochs)
        for run in runs:
            progress.update(task, description=f"{run.dataset}: {run.rule}, η={run.lr:g}")
            curves.append(run.train(lambda: progress.advance(task)))
    paths = [*write_curves(curves, args.out)]
    paths += [plot_curves(curves, name, args.out / f"{name}.png") for name in args.datasets.split(",")]
    table = Table(title=f"after {args.epochs} epochs (same initial weights and batch order for "
                        "every rule)", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("dataset", "network", "η", "rule", "training loss", "train acc", "test acc"):
        table.add_column(column, justify="left" if column in ("dataset", "network", "rule") else "right",
                         overflow="fold")  # a network of layers' text is long: wrapped, not cut
    for run, c in zip(runs, curves, strict=True):
        table.add_row(c.dataset, run.network, f"{c.lr:g}", c.rule, f"{c.loss[-1]:.4g}",
                      f"{c.train_accuracy[-1]:.3f}", f"{c.test_accuracy[-1]:.3f}")
    console.print(table)
    for note in skipped:
        console.print(f"not run: {note}")
    console.print("wrote " + ", ".join(str(p) for p in paths))
    return 0
