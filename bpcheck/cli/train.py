"""``bpcheck train``: train with each rule from the same start in the same order; curves to
CSV, JSON and PNG. The MLP of ``manual.spec`` on iris and digits (``bpcheck.mlp.train``), with
``--network`` a network of layers on digits' 8×8 images (``bpcheck.layers.train``), or with
``--task`` a sequence model on a generated task (``bpcheck.layers.train_sequences``)."""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from bpcheck.cli.exits import EXIT_AGREES, EXIT_USAGE
from bpcheck.cli.interrupts import writing
from bpcheck.cli.options import Parser, described
from bpcheck.cli.paths import check_output_dir
from bpcheck.cli.plots import plot_curves
from bpcheck.cli.progress import progress
from bpcheck.cli.train_runs import Run, mlp_runs, network_runs, sequence_runs
from bpcheck.cli.validators import MAX_EPOCHS, count_up_to, natural, output_dir, repeated
from bpcheck.core.datasets import DATASETS
from bpcheck.core.training import Curve
from bpcheck.layers.train import DIGITS_CNN, STACK_RULES
from bpcheck.layers.train_sequences import TASKS, Task
from manual.rules import RULES
from manual.spec import LOSSES

#: Defaults that differ between the MLP and ``--network`` on digits: (MLP, network of layers);
#: a sequence task (``--task``) takes its own (``bpcheck.layers.train_sequences.TASKS``).
FAMILY_DEFAULTS = {"datasets": ("iris,digits", "digits"),
            "rules": ("derived,seed-literal", "derived,max_pool_spread"),
            "lrs": ((0.001, 0.01, 0.1), (0.03, 0.1, 0.3)), "batch": (10, 32), "epochs": (30, 30)}
DIGITS = "digits"  # --task's default: --network trains on digits


def write_curves(curves: list[Curve], out: Path, networks: list[str] | None = None) -> tuple[Path, Path]:
    """curves.csv (one row per epoch; a diverged curve's last row is the epoch it diverged in,
    its numbers empty and ``diverged`` saying so) and curves.json (``diverged``: that epoch, or
    null); each curve's network beside its dataset (or task) when ``networks`` names them."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / "curves.csv", out / "curves.json"
    networks = networks or [""] * len(curves)
    with writing():
        with csv_path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["dataset", "network", "rule", "lr", "epoch", "loss", "train_accuracy",
                             "test_accuracy", "diverged"])
            for c, network in zip(curves, networks, strict=True):
                for epoch, row in enumerate(zip(c.loss, c.train_accuracy, c.test_accuracy, strict=True), 1):
                    writer.writerow([c.dataset, network, c.rule, c.lr, epoch, *row, ""])
                if c.diverged is not None:
                    writer.writerow([c.dataset, network, c.rule, c.lr, c.diverged, "", "", "",
                                     "overflowed the dtype: training stopped"])
        json_path.write_text(json.dumps([{"dataset": c.dataset, "network": network} | asdict(c)
                                         for c, network in zip(curves, networks, strict=True)], indent=1))
    return csv_path, json_path


def output_files(args: argparse.Namespace) -> list[str]:
    """The files ``main`` writes into ``--out``."""
    names = [args.task] if args.task in TASKS else args.datasets.split(",")
    return ["curves.csv", "curves.json", *(f"{name}.png" for name in names)]


def parse(argv: list[str], doc: str) -> argparse.Namespace:
    """The options, with the defaults of the mode (MLP, ``--network`` on digits, or a sequence
    ``--task``) filled in; ``args.given`` names the options given."""
    def numbers(text: str, kind=float) -> tuple:
        try:
            return tuple(kind(part) for part in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None

    def per_task(what: Callable[[Task], object]) -> str:
        return "; ".join(f"{name}: {what(task)}" for name, task in TASKS.items())

    parser = Parser(prog="bpcheck train", description=described(doc))
    parser.add_argument("--network", default=None, metavar="LAYERS",
                        help="a network of layers to train instead of the MLP, on digits' 8x8 images, "
                             f"e.g. {DIGITS_CNN!r} (manual.stack's text form; it must end with 10 "
                             "outputs), or on --task's sequences (default: the task's network, "
                             f"{per_task(lambda t: repr(t.network))})")
    parser.add_argument("--task", default=None, choices=[DIGITS, *TASKS],
                        help="what --network learns (default digits), or a sequence task generated "
                             "from --seed, tokens 0/1: running-parity (a label per step: the parity of "
                             "the tokens so far; lengths 1..T, padded) or parity (one label per sequence)")
    parser.add_argument("--length", type=int, default=None, metavar="T",
                        help=f"--task's sequence length T (default {per_task(lambda t: t.length)})")
    parser.add_argument("--datasets", default=None,
                        help=f"from {list(DATASETS)} (default iris,digits; with --network only digits)")
    parser.add_argument("--rules", default=None,
                        help=f"from {list(RULES)} (default derived,seed-literal); with --network or "
                             f"--task from {list(STACK_RULES)} (default derived,max_pool_spread; "
                             f"{per_task(lambda t: ','.join(('derived', *t.mutants)))})")
    parser.add_argument("--lrs", type=numbers, default=None,
                        help="learning rates (default 0.001,0.01,0.1; with --network 0.03,0.1,0.3; "
                             f"{per_task(lambda t: t.lr)})")
    parser.add_argument("--epochs", type=count_up_to(MAX_EPOCHS), default=None,
                        help=f"default 30; {per_task(lambda t: t.epochs)}; at most {MAX_EPOCHS}")
    parser.add_argument("--batch", type=int, default=None,
                        help="mini-batch size (default 10; 32 with --network or --task)")
    parser.add_argument("--hidden", type=lambda t: numbers(t, int), default=None,
                        help="hidden widths, e.g. 16 or 8,8 (default: the seed's formula); not with "
                             "--network or --task")
    parser.add_argument("--activations", default=None, metavar="A,…",
                        help="one per layer after the input (default: sigmoid everywhere); not with "
                             "--network or --task")
    parser.add_argument("--loss", default=None, choices=list(LOSSES),
                        help="default half-sse; with --network or --task softmax-ce-labels, averaged "
                             "(over the real steps of a per-step loss; not settable)")
    parser.add_argument("--seed", type=natural, default=0,
                        help="data split or generated sequences, initial weights, order, dropout masks")
    parser.add_argument("--out", type=output_dir("--out"), default="bpcheck-train",
                        help="output directory, made if missing (its parent must exist): curves.csv, "
                             "curves.json and a PNG per dataset or task (default bpcheck-train)")
    args = parser.parse_args(argv)
    args.given = {name for name, value in vars(args).items() if value is not None}
    task = TASKS.get(args.task)
    if task is not None:  # a sequence task: its own defaults; --datasets stays unset
        args.network = args.network if args.network is not None else task.network
        args.length = args.length if args.length is not None else task.length
        for name, default in (("rules", ",".join(("derived", *task.mutants))), ("lrs", (task.lr,)),
                              ("batch", 32), ("epochs", task.epochs)):
            setattr(args, name, default if getattr(args, name) is None else getattr(args, name))
        return args
    if args.task == DIGITS and args.network is None:
        args.network = DIGITS_CNN
    for name, defaults in FAMILY_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, defaults[args.network is not None])
    return args


def problems_with(args: argparse.Namespace) -> list[str]:
    """What is wrong with the options, each naming its option."""
    rules, layered, sequences = args.rules.split(","), args.network is not None, args.task in TASKS
    datasets = [] if sequences else args.datasets.split(",")
    known = STACK_RULES if layered else RULES
    problems = [f"--datasets: unknown {d!r}" for d in datasets if d not in DATASETS]
    problems += [f"{option}: {', '.join(map(repr, twice))} given twice (it would train twice)"
                 for option, values in (("--datasets", datasets), ("--rules", rules),
                                        ("--lrs", list(args.lrs)))
                 if (twice := repeated(values))]
    if sequences and "datasets" in args.given:
        problems.append(f"--datasets: --task {args.task} generates its sequences; leave --datasets out")
    if "length" in args.given and not sequences:
        problems.append("--length: applies to a sequence task (--task " + " or ".join(TASKS) + ")")
    if sequences and args.length < 1:
        problems.append(f"--length: {args.length} is not a sequence length (≥ 1)")
    if layered:
        problems += [f"--datasets: --network trains on digits only, not {d!r}"
                     for d in datasets if d in DATASETS and d != "digits"]
        problems += [f"{option}: applies to the MLP, not with --network or --task"
                     for option in ("--hidden", "--activations", "--loss")
                     if getattr(args, option[2:]) is not None]
    problems += [f"--rules: unknown {r!r}" for r in rules if r not in known]
    if layered and not set(rules) <= known.keys():  # the names it takes, after the last unknown
        problems[-1] += f" (with --network or --task: one of {list(known)})"
    problems += [f"--lrs: {lr} is not a positive learning rate" for lr in args.lrs if not lr > 0]
    problems += ["--epochs and --batch must be ≥ 1"] if min(args.epochs, args.batch) < 1 else []
    return problems


def spaced(network: str) -> str:
    """A network's text with a space after each ``;``, where rich may wrap it."""
    return " ".join(network.replace(";", "; ").split())


def curves_table(runs: list[Run], curves: list[Curve], epochs: int, shared: bool) -> Table:
    """Each run's final training loss and accuracies; a network column unless every run trains
    the same network (``shared``)."""
    table = Table(title=f"after {epochs} epoch{'s' * (epochs != 1)} (same initial weights and batch "
                        "order for every rule)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("dataset", *(() if shared else ("network",)), "η", "rule", "training loss", "train acc",
                   "test acc"):
        table.add_column(column, justify="left" if column in ("dataset", "network", "rule") else "right",
                         overflow="fold")  # long text wraps, not cut
    for run, c in zip(runs, curves, strict=True):
        numbers = ((f"[bold red]diverged in epoch {c.diverged}[/]", "-", "-") if c.diverged is not None
                   else (f"{c.loss[-1]:.4g}", f"{c.train_accuracy[-1]:.3f}", f"{c.test_accuracy[-1]:.3f}"))
        table.add_row(c.dataset, *(() if shared else (spaced(run.network),)), f"{c.lr:g}", c.rule, *numbers)
    return table


def main(argv: list[str], console: Console) -> int:
    """``bpcheck train``: train with each rule, same start and order, and plot the curves."""
    args = parse(argv, main.__doc__)
    problems = problems_with(args)
    if not problems:
        try:
            check_output_dir(args.out, "--out", output_files(args))
            runs, skipped = (sequence_runs if args.task in TASKS else
                             network_runs if args.network is not None else mlp_runs)(args)
        except ValueError as error:  # an OutputPathError too
            problems = [str(error)]
    if problems:
        console.print("[bold red]bpcheck train: error:[/] " + "; ".join(problems))
        return EXIT_USAGE
    curves = []
    with progress(console, "training", len(runs) * args.epochs) as shown:
        for run in runs:
            shown.update(description=f"{run.dataset}: {run.rule}, η={run.lr:g}")
            curves.append(run.train(shown.advance))
            shown.advance(args.epochs - len(curves[-1].loss))  # the epochs a diverged run skips
    out = Path(args.out)
    paths = [*write_curves(curves, out, [run.network for run in runs])]
    names = [args.task] if args.task in TASKS else args.datasets.split(",")
    paths += [plot_curves(curves, name, out / f"{name}.png") for name in names]
    if args.network is not None and runs:  # one network: a line of its own, not a column
        console.print(f"network: {spaced(runs[0].network)}")
    console.print(curves_table(runs, curves, args.epochs, args.network is not None))
    for note in skipped:
        console.print(f"not run: {note}")
    for c in curves:
        if c.diverged is not None:
            console.print(f"[yellow]{c.dataset}: {c.rule}, η={c.lr:g} diverged in epoch {c.diverged} "
                          "(a step or the loss overflowed the dtype): its curve "
                          + (f"ends with epoch {c.diverged - 1}[/]" if c.diverged > 1 else "has no point[/]"))
    console.print("wrote " + ", ".join(str(p) for p in paths))
    return EXIT_AGREES
