"""``bpcheck sweep RULE``: how a rule's discrepancy varies with dtype, depth, width, batch and η.

From a base network (4-8-3 sigmoid, ½-squared error summed, bias node, batch 16, η = 0.1,
float64), one setting changes at a time; each point is the median and the largest, over a few
random problems, of the rule's relative error max_θ max|D − G| / max|G|, D its directions and
G torch's gradient. Settings the rule is not defined on are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manual.init import truncated_normal
from manual.rules import UpdateRule
from manual.spec import Spec
from reference import torch_ref
from study.data import random_data

BASE = {"dtype": "float64", "depth": 1, "width": 8, "batch": 16, "lr": 0.1}
AXES = {"dtype": ["float32", "float64"], "depth": [1, 2, 3, 4], "width": [2, 4, 8, 16, 32],
        "batch": [1, 4, 16, 64], "lr": [1e-3, 1e-2, 1e-1, 1.0]}


@dataclass
class Point:
    axis: str
    value: object
    median: float
    largest: float
    problems: int


def relative_error(rule: UpdateRule, setting: dict, seed: int) -> float | None:
    """The rule's relative error on one random problem of this setting (None: not defined)."""
    hidden = (setting["width"],) * setting["depth"]
    spec = Spec((4, *hidden, 3), ("sigmoid",) * (setting["depth"] + 1), dtype=setting["dtype"])
    if rule.unsupported_reason(spec):
        return None
    rng = np.random.default_rng(seed)
    X, Y = random_data(spec, setting["batch"], rng)
    params = truncated_normal(spec, rng)
    D = rule.directions(spec, params, X, Y, setting["lr"])
    G = torch_ref.gradients(spec, {k: np.asarray(v, np.float64) for k, v in params.items()},
                            X.astype(np.float64), Y.astype(np.float64))
    return max(float(np.abs(np.asarray(D[k], np.float64) - G[k]).max() / np.abs(G[k]).max()) for k in G)


def sweep(rule: UpdateRule, repeats: int = 5, on_point=lambda: None) -> list[Point]:
    points = []
    for axis, values in AXES.items():
        for value in values:
            errors = [e for seed in range(repeats)
                      if (e := relative_error(rule, {**BASE, axis: value}, seed)) is not None]
            on_point()
            if errors:
                points.append(Point(axis, value, float(np.median(errors)), max(errors), len(errors)))
    return points


def plot_sweep(points: list[Point], rule: str, path) -> None:
    """One panel per axis: median (line) and largest (markers) relative error, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, panels = plt.subplots(1, len(AXES), figsize=(15, 3.6), dpi=100)
    for panel, axis in zip(panels, AXES, strict=True):
        mine = [p for p in points if p.axis == axis]
        labels = [str(p.value) for p in mine]
        panel.plot(labels, [p.median for p in mine], "o-", label="median")
        panel.plot(labels, [p.largest for p in mine], "x", label="largest")
        panel.set(yscale="log", xlabel=axis, title=f"{rule}: by {axis}")
        if not mine:
            panel.text(0.5, 0.5, "not defined", ha="center", transform=panel.transAxes)
    panels[0].set_ylabel("relative error of the direction vs torch")
    panels[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def sweep_main(argv: list[str], console) -> int:
    """``bpcheck sweep RULE``: the rule's discrepancy against each setting, as a table and a PNG."""
    import argparse
    from pathlib import Path

    from rich import box
    from rich.progress import Progress
    from rich.table import Table

    from study.diagnose import find_rule

    parser = argparse.ArgumentParser(prog="bpcheck sweep", description=sweep_main.__doc__)
    parser.add_argument("rule")
    parser.add_argument("--repeats", type=int, default=5, help="random problems per point")
    parser.add_argument("--out", type=Path, default=Path("bpcheck-sweep.png"))
    args = parser.parse_args(argv)
    rule = find_rule(args.rule)
    if rule is None or args.repeats < 1:
        console.print(f"[bold red]bpcheck sweep: error:[/] unknown rule {args.rule!r} or --repeats < 1")
        return 2
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("sweeping…", total=sum(map(len, AXES.values())))
        points = sweep(rule, args.repeats, lambda: progress.advance(task))
    table = Table(title=f"{rule.name}: relative error of its direction vs torch, one setting changed "
                        f"from {BASE}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("setting", "value", "median", "largest", "problems"):
        table.add_column(column, justify="left" if column == "setting" else "right")
    for p in points:
        table.add_row(p.axis, str(p.value), f"{p.median:.3e}", f"{p.largest:.3e}", str(p.problems))
    console.print(table)
    plot_sweep(points, rule.name, args.out)
    console.print(f"wrote {args.out}")
    return 0
