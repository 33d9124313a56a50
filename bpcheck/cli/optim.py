"""``bpcheck optim`` (torch vs optax conventions) and ``bpcheck --optimizer`` (training check)."""

from __future__ import annotations

import argparse

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bpcheck.cli.exits import EPILOG, EXIT_AGREES, EXIT_INCONCLUSIVE, EXIT_USAGE, EXIT_WRONG
from bpcheck.cli.options import described
from bpcheck.cli.validators import MAX_OPTIM_STEPS, count_up_to, natural
from bpcheck.mlp.problem import Problem
from manual import optim


def _fmt(value: float) -> str:
    return f"{value:.2e}"


def optimizer_report(problem: Problem, name: str, options: dict, steps: int, console: Console) -> int:
    """Train ``steps`` steps with manual gradients + the manual optimizer against torch autograd +
    torch.optim and jax + optax; one table row per step × parameter × framework. The exit code:
    EXIT_WRONG if a row differs, else EXIT_INCONCLUSIVE if a framework could not judge
    (``Uninformative``), else EXIT_AGREES."""
    from bpcheck.mlp.optimizers import (  # torch, jax load now
        FRAMEWORKS,
        Uninformative,
        compare_training,
        in_convention,
    )

    ok, unjudged = True, []
    table = Table(title=f"[bold]{name}[/] for {steps} steps: manual gradients + manual optimizer "
                        "vs autodiff + the framework's optimizer (max |θ_manual − θ_framework|)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("step", "param", "framework", "max |err|", "rel err", "allowed", "verdict"):
        table.add_column(column, justify="left" if column in ("param", "framework") else "right")
    for framework in FRAMEWORKS:
        hp = in_convention(name, optim.hyperparameters(name, lr=problem.lr, **options), framework)
        try:
            rows = compare_training(problem, name, hp, steps, framework)
        except Uninformative as reason:
            unjudged.append(f"{framework}: {reason}")
            continue
        for row in rows:
            ok &= row.agrees
            verdict = "[green]agrees[/]" if row.agrees else "[bold red]DIFFERS[/]"
            table.add_row(str(row.step), row.parameter, framework, _fmt(row.max_abs_error),
                          _fmt(row.rel_error), _fmt(row.allowed), verdict)
    if table.row_count:
        console.print(table)
    if not ok:
        console.print(f"[bold red]{name}: DIFFERS from a framework[/]")
    for reason in unjudged:
        console.print(f"[yellow]{name}: inconclusive against {escape(reason)}[/]", soft_wrap=True)
    if ok and not unjudged:
        console.print(f"[green]{name}: agrees with torch.optim and optax at every step[/]")
    return EXIT_WRONG if not ok else EXIT_INCONCLUSIVE if unjudged else EXIT_AGREES


def main(argv: list[str], console: Console) -> int:
    """``bpcheck optim``: torch vs optax for each same-named optimizer at their defaults."""
    parser = argparse.ArgumentParser(prog="bpcheck optim", description=described(main.__doc__),
                                     epilog=EPILOG)
    parser.add_argument("--steps", type=count_up_to(MAX_OPTIM_STEPS), default=10,
                        help=f"steps of the shared gradient sequence (1 to {MAX_OPTIM_STEPS}, default 10)")
    parser.add_argument("--seed", type=natural, default=0, help="θ₀ and the gradients' seed (default 0)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        console.print("[bold red]bpcheck optim: error:[/] --steps must be ≥ 1")
        return EXIT_USAGE
    from bpcheck.mlp.optimizers import convention_table  # torch, jax and optax load now

    rows = convention_table(args.steps, args.seed)
    table = Table(title=f"torch.optim vs optax at their defaults: same θ_0 (4×3 + 4 parameters), "
                        f"same {args.steps} gradients, same η (torch's default), max |Δθ| over "
                        "the trajectory", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("optimizer", "where they differ (torch → optax)", "torch vs optax",
                   "manual(torch) vs torch", "manual(switched) vs optax"):
        table.add_column(column, justify="left" if column.startswith(("optimizer", "where")) else "right")
    explained = True
    for row in rows:
        explained &= row["explained"]
        table.add_row(row["optimizer"], row["differences"], _fmt(row["torch_vs_optax"]),
                      _fmt(row["manual_torch_vs_torch"]), _fmt(row["manual_switched_vs_optax"]))
    console.print(table)
    console.print("manual(switched): the manual rule at torch's defaults with only the listed "
                  "settings changed to optax's — it reproduces optax to rounding, so the listed "
                  "conventions are the whole difference." if explained else
                  "[bold red]some difference is not explained by the listed conventions[/]")
    return EXIT_AGREES if explained else EXIT_WRONG
