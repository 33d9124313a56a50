"""``bpcheck train``: train with each rule from the same start in the same order; curves to
CSV, JSON and PNG."""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import asdict
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
from manual.initialisers import truncated_normal
from manual.rules import RULES
from manual.spec import LOSSES


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


def main(argv: list[str], console: Console) -> int:
    """``bpcheck train``: train with each rule, same start and order, and plot the curves."""
    def numbers(text: str, kind=float) -> tuple:
        try:
            return tuple(kind(part) for part in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None

    parser = argparse.ArgumentParser(prog="bpcheck train", description=described(main.__doc__))
    parser.add_argument("--datasets", default="iris,digits", help=f"from {list(DATASETS)}")
    parser.add_argument("--rules", default="derived,seed-literal", help=f"from {list(RULES)}")
    parser.add_argument("--lrs", type=numbers, default=(0.001, 0.01, 0.1), help="learning rates")
    parser.add_argument("--epochs", type=int, default=30, help="default 30")
    parser.add_argument("--batch", type=int, default=10, help="mini-batch size")
    parser.add_argument("--hidden", type=lambda t: numbers(t, int), default=None,
                        help="hidden widths, e.g. 16 or 8,8 (default: the seed's formula)")
    parser.add_argument("--activations", default=None, metavar="A,…",
                        help="one per layer after the input (default: sigmoid everywhere)")
    parser.add_argument("--loss", default="half-sse", choices=list(LOSSES))
    parser.add_argument("--seed", type=int, default=0, help="data split, initial weights, order")
    parser.add_argument("--out", type=Path, default=Path("bpcheck-train"), help="output directory")
    args = parser.parse_args(argv)
    datasets, rules = args.datasets.split(","), args.rules.split(",")
    problems = [f"--datasets: unknown {d!r}" for d in datasets if d not in DATASETS]
    problems += [f"--rules: unknown {r!r}" for r in rules if r not in RULES]
    problems += [f"--lrs: {lr} is not a positive learning rate" for lr in args.lrs if not lr > 0]
    problems += ["--epochs and --batch must be ≥ 1"] if min(args.epochs, args.batch) < 1 else []
    if problems:
        console.print("[bold red]bpcheck train: error:[/] " + "; ".join(problems))
        return 2
    runs, skipped = [], []
    activations = tuple(args.activations.split(",")) if args.activations else None
    for name in datasets:
        data = split(name, args.seed)
        try:
            spec = seed_program_spec(data, args.hidden, args.seed, activations, args.loss)
        except ValueError as error:
            console.print(f"[bold red]bpcheck train: error:[/] {error}")
            return 2
        start = truncated_normal(spec, np.random.default_rng(args.seed))
        for rule in (RULES[r] for r in rules):
            if rule.unsupported_reason(spec):
                skipped.append(f"{rule.name} on {name}: {rule.unsupported_reason(spec)}")
                continue
            runs += [(name, data, spec, start, rule, lr) for lr in args.lrs]
    curves = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("training", total=len(runs) * args.epochs)
        for name, data, spec, start, rule, lr in runs:
            progress.update(task, description=f"{name}: {rule.name}, η={lr:g}")
            curves.append(train_curve(rule, spec, start, data, lr, args.epochs, args.batch, args.seed,
                                      name, lambda: progress.advance(task)))
    paths = [*write_curves(curves, args.out)]
    paths += [plot_curves(curves, name, args.out / f"{name}.png") for name in datasets]
    table = Table(title=f"after {args.epochs} epochs (same initial weights and batch order for "
                        "every rule)", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("dataset", "network", "η", "rule", "training loss", "train acc", "test acc"):
        table.add_column(column, justify="left" if column in ("dataset", "network", "rule") else "right")
    for c in curves:
        spec = next(s for n, _, s, *_ in runs if n == c.dataset)
        table.add_row(c.dataset, "-".join(map(str, spec.sizes)), f"{c.lr:g}", c.rule, f"{c.loss[-1]:.4g}",
                      f"{c.train_accuracy[-1]:.3f}", f"{c.test_accuracy[-1]:.3f}")
    console.print(table)
    for note in skipped:
        console.print(f"not run: {note}")
    console.print("wrote " + ", ".join(str(p) for p in paths))
    return 0
