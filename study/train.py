"""``bpcheck train``: what a rule's error costs in practice — loss and accuracy while training.

Every rule starts from the same initial weights and sees the same mini-batches in the same
order, for each learning rate; data are scikit-learn's bundled iris and digits (nothing is
downloaded), split 2/3 for training, 1/3 for testing. The curves go to CSV and JSON, the plots
to PNG (matplotlib, Agg backend).
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits, load_iris

from manual import network
from manual.init import truncated_normal
from manual.rules import UpdateRule
from manual.spec import LOSS_TARGETS, LOSSES, Spec
from study.data import one_hot, seed_hidden_width

#: name → (loader, feature scale): digits' pixels are 0–16, iris is used raw, as in the seed.
DATASETS = {"iris": (load_iris, 1.0), "digits": (load_digits, 16.0)}


@dataclass
class Split:
    X_train: np.ndarray  # (F, N) columns, as the seed's program keeps them
    Y_train: np.ndarray  # (C, N) one-hot
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def features(self) -> int:
        return self.X_train.shape[0]

    @property
    def classes(self) -> int:
        return self.Y_train.shape[0]


def split(name: str, seed: int) -> Split:
    """The dataset shuffled by ``seed``, first 2/3 for training."""
    loader, scale = DATASETS[name]
    bunch = loader()
    order = np.random.default_rng(seed).permutation(len(bunch.target))
    X, y = bunch.data[order] / scale, bunch.target[order]
    n = 2 * len(y) // 3
    classes = int(y.max()) + 1
    return Split(X[:n].T, one_hot(y[:n], classes), y[:n], X[n:].T, y[n:])


@dataclass
class Curve:
    dataset: str
    rule: str
    lr: float
    loss: list[float] = field(default_factory=list)  # L on the training set, after each epoch
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)


def accuracy(spec: Spec, params, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(network.predict(spec, params, X), axis=0) == y))


def train_curve(rule: UpdateRule, spec: Spec, params, data: Split, lr: float, epochs: int,
                batch: int, seed: int, dataset: str, on_epoch=lambda: None) -> Curve:
    """Mini-batch training with ``rule.step``; epoch e visits the samples in the order of
    permutation(seed + e), the same for every rule and learning rate."""
    curve, n = Curve(dataset, rule.name, lr), data.X_train.shape[1]
    for epoch in range(epochs):
        order = np.random.default_rng(seed + 1 + epoch).permutation(n)
        for start in range(0, n, batch):
            chosen = order[start:start + batch]
            Y = targets(spec, data)
            params = rule.step(spec, params, data.X_train[:, chosen], Y[..., chosen], lr)
        loss = network.loss(spec, params, data.X_train, targets(spec, data))
        curve.loss.append(loss if np.isfinite(loss) else float("nan"))
        curve.train_accuracy.append(accuracy(spec, params, data.X_train, data.y_train))
        curve.test_accuracy.append(accuracy(spec, params, data.X_test, data.y_test))
        on_epoch()
    return curve


def seed_spec(data: Split, hidden: tuple[int, ...] | None, seed: int,
              activations: tuple[str, ...] | None = None, loss: str = "half-sse") -> Spec:
    """The seed's network for this data — sigmoid, ½-squared error summed, bias node, the hidden
    width from the seed program's formula — or the family member the arguments name."""
    if hidden is None:
        hidden = (seed_hidden_width(data.X_train.shape[1], np.random.default_rng(seed)),)
    sizes = (data.features, *hidden, data.classes)
    return Spec(sizes, activations or ("sigmoid",) * (len(sizes) - 1), loss)


def targets(spec: Spec, data: Split) -> np.ndarray:
    """One-hot columns, or class labels for a loss that takes labels."""
    return data.y_train if LOSS_TARGETS[spec.loss] == "labels" else data.Y_train


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


#: Plot size in inches at PLOT_DPI: the PNGs are 1100 × 420 pixels.
PLOT_SIZE, PLOT_DPI = (11.0, 4.2), 100


def plot_curves(curves: list[Curve], dataset: str, path: Path) -> Path:
    """Training loss (log scale) and test accuracy per epoch; colour = η, line style = rule."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mine = [c for c in curves if c.dataset == dataset]
    rates = sorted({c.lr for c in mine})
    styles = dict(zip(sorted({c.rule for c in mine}), ["-", "--", ":", "-."], strict=False))
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.85, len(rates)))
    figure, (left, right) = plt.subplots(1, 2, figsize=PLOT_SIZE, dpi=PLOT_DPI)
    for c in mine:
        epochs = np.arange(1, len(c.loss) + 1)
        style = {"color": colours[rates.index(c.lr)], "linestyle": styles[c.rule],
                 "label": f"{c.rule}, η={c.lr:g}"}
        left.plot(epochs, c.loss, **style)
        right.plot(epochs, c.test_accuracy, **style)
    left.set(yscale="log", xlabel="epoch", ylabel="training loss L", title=f"{dataset}: loss")
    right.set(xlabel="epoch", ylabel="test accuracy", ylim=(0, 1.02), title=f"{dataset}: test accuracy")
    right.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=PLOT_DPI)
    plt.close(figure)
    return path


def train_main(argv: list[str], console) -> int:
    """``bpcheck train``: train with each rule, same start and order, and plot the curves."""
    import argparse

    from rich import box
    from rich.progress import Progress
    from rich.table import Table

    from manual.rules import RULES

    def numbers(text: str, kind=float) -> tuple:
        try:
            return tuple(kind(part) for part in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None

    parser = argparse.ArgumentParser(prog="bpcheck train", description=train_main.__doc__)
    parser.add_argument("--datasets", default="iris,digits", help=f"from {list(DATASETS)}")
    parser.add_argument("--rules", default="derived,seed-literal", help=f"from {list(RULES)}")
    parser.add_argument("--lrs", type=numbers, default=(0.001, 0.01, 0.1), help="learning rates")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=10, help="mini-batch size")
    parser.add_argument("--hidden", type=lambda t: numbers(t, int), default=None,
                        help="hidden widths, e.g. 16 or 8,8 (default: the seed's formula)")
    parser.add_argument("--activations", default=None, metavar="A,…",
                        help="one per layer after the input (default: sigmoid everywhere)")
    parser.add_argument("--loss", default="half-sse", choices=LOSSES)
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
            spec = seed_spec(data, args.hidden, args.seed, activations, args.loss)
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
