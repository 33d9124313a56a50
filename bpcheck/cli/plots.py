"""The commands' figures (matplotlib, Agg backend: files only, no display).

pyplot is imported when a figure is drawn, not when the command line starts: most commands
draw none, and choosing the backend is a process-wide setting.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bpcheck.cli.interrupts import writing
from bpcheck.core.sweep import Point
from bpcheck.core.training import Curve


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt

#: The largest loss a log axis shows: past it matplotlib's log ticks overflow, and the plot shows
#: log₁₀ L on a linear axis instead.
LOG_AXIS_UP_TO = 1e100

#: Plot size in inches at PLOT_DPI: the PNGs are 1100 × 420 pixels.
PLOT_SIZE, PLOT_DPI = (11.0, 4.2), 100


def plot_curves(curves: list[Curve], dataset: str, path: Path) -> Path:
    """Training loss (log scale; log₁₀ L past LOG_AXIS_UP_TO) and test accuracy per epoch;
    colour = η, line style (then marker, past four rules) = rule. A diverged curve ends with a
    cross at its last epoch, and its legend entry says in which epoch it diverged."""
    plt = _pyplot()
    mine = [c for c in curves if c.dataset == dataset]
    rates = sorted({c.lr for c in mine})
    lines, markers = ["-", "--", ":", "-."], [None, "o", "s", "^", "x", "d"]
    styles = {rule: (lines[i % 4], markers[i // 4 % len(markers)])
              for i, rule in enumerate(sorted({c.rule for c in mine}))}
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.85, len(rates)))
    figure, (left, right) = plt.subplots(1, 2, figsize=PLOT_SIZE, dpi=PLOT_DPI)
    huge = any(loss > LOG_AXIS_UP_TO for c in mine for loss in c.loss)
    positive = any(loss > 0 for c in mine for loss in c.loss) and not huge  # a log axis needs one > 0
    for c in mine:
        epochs = np.arange(1, len(c.loss) + 1)
        losses = np.log10(np.maximum(c.loss, np.finfo(np.float64).tiny)) if huge else c.loss
        label = f"{c.rule}, η={c.lr:g}" + ("" if c.diverged is None else f": diverged in epoch {c.diverged}")
        style = {"color": colours[rates.index(c.lr)], "linestyle": styles[c.rule][0],
                 "marker": styles[c.rule][1], "markersize": 3, "label": label}
        left.plot(epochs, losses, **style)
        right.plot(epochs, c.test_accuracy, **style)
        if c.diverged is not None and c.loss:  # where it stops
            left.plot(epochs[-1:], losses[-1:], "x", color=style["color"], markersize=9)
            right.plot(epochs[-1:], c.test_accuracy[-1:], "x", color=style["color"], markersize=9)
    last = max([len(c.loss) + (c.diverged is not None) for c in mine] + [1])
    for panel in (left, right):  # every epoch trained or diverged in, even where none has a point
        panel.set_xlim(0.5, last + 0.5)
    left.set(yscale="log" if positive else "linear", xlabel="epoch",
             ylabel="log₁₀ of the training loss L" if huge else "training loss L", title=f"{dataset}: loss")
    right.set(xlabel="epoch", ylabel="test accuracy", ylim=(0, 1.02), title=f"{dataset}: test accuracy")
    right.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    with writing():
        figure.savefig(path, dpi=PLOT_DPI)
    plt.close(figure)
    return path


def plot_sweep(points: list[Point], rule: str, path, axes: dict[str, list],
               quantity: str = "direction") -> None:
    """One panel per axis of ``axes``: median (line) and largest (markers) relative error of the
    rule's ``quantity`` (an MLP rule's direction, a network's gradient), log scale."""
    plt = _pyplot()
    figure, panels = plt.subplots(1, len(axes), figsize=(3 * len(axes), 3.6), dpi=100)
    for panel, axis in zip(panels, axes, strict=True):
        mine = [p for p in points if p.axis == axis]
        labels = [str(p.value) for p in mine]
        panel.plot(labels, [p.median for p in mine], "o-", label="median")
        panel.plot(labels, [p.largest for p in mine], "x", label="largest")
        panel.set(yscale="log", xlabel=axis, title=f"{rule}: by {axis}")
        if not mine:
            panel.text(0.5, 0.5, "not defined", ha="center", transform=panel.transAxes)
    panels[0].set_ylabel(f"relative error of the {quantity} vs torch")
    panels[0].legend(fontsize=8)
    figure.tight_layout()
    with writing():
        figure.savefig(path, dpi=100)
    plt.close(figure)
