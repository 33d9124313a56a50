"""``bpcheck [compare]``: compare every registered rule with every witness on one network."""

from __future__ import annotations

import json

from rich.console import Console
from rich.markup import escape

from bpcheck.cli.exits import (
    EPILOG,
    EXIT_AGREES,
    EXIT_USAGE,
    comparison_exit_code,
    worst,
)
from bpcheck.cli.interrupts import writing
from bpcheck.cli.options import INPUT_SHAPE_ALONE, build_parser, build_problem, parse_options
from bpcheck.cli.progress import progress
from bpcheck.cli.render import finite_difference_line, rule_table, summary_line, witness_line
from bpcheck.cli.validators import finite_difference_sample
from bpcheck.core.compare import row_dict
from bpcheck.mlp.compare import compare_all
from manual.optim import hyperparameters
from manual.rules import RULES


def main(argv: list[str], console: Console) -> int:
    """``bpcheck [compare] [network options]``: every rule against every witness."""
    parser = build_parser()
    parser.epilog = EPILOG
    args = parser.parse_args(argv)
    if args.network is not None:
        from bpcheck.cli.network import main_network
        return main_network(args, console)
    try:
        if args.input_shape is not None:
            raise ValueError(INPUT_SHAPE_ALONE)
        unknown = [name for name in args.rules or () if name not in RULES]
        if unknown:
            raise ValueError(f"--rules: unknown {unknown}; expected names from {list(RULES)}")
        problem, about = build_problem(args)
        options = parse_options(args.optimizer_options)
        steps = 10 if args.steps is None else args.steps
        if args.optimizer:
            hyperparameters(args.optimizer, lr=args.lr, **options)  # refuse bad settings up front
            if steps < 1:
                raise ValueError("--steps must be ≥ 1")
        elif args.steps is not None or args.optimizer_options:
            raise ValueError("--steps and --optimizer-options need --optimizer (training with it)")
    except (ValueError, TypeError) as error:
        console.print(f"[bold red]bpcheck: error:[/] {escape(str(error))}", soft_wrap=True)
        return EXIT_USAGE
    spec = problem.spec
    console.print(f"[bold]network[/] sizes={spec.sizes} activations={spec.activations} "
                  f"loss={spec.loss}/{spec.reduction} l2={spec.l2} bias={spec.bias} "
                  f"layout={spec.layout} dtype={spec.dtype}; η={problem.lr}; seed={args.seed}; {about}")
    enabled, sample = finite_difference_sample(args.finite_differences)
    with progress(console, "witnesses, finite differences") as shown:  # a bar, or a line every 5 s in a log
        reports, witness_rows = compare_all(
            problem, list(args.rules) if args.rules else None, finite_differences=enabled,
            fd_sample=sample, progress=lambda done, total: shown.update(completed=done, total=total))
    console.print(finite_difference_line(enabled, sample, problem.n_params))
    for report in reports:
        if report.rows:
            console.print(rule_table(report))
    for report in reports:
        console.print(summary_line(report, spec.dtype))
    console.print(witness_line(witness_rows))
    code = comparison_exit_code(reports, witness_rows)
    if args.optimizer:  # the optimizer witnesses (torch.optim, optax) load only when asked for
        from bpcheck.cli.optim import optimizer_report
        code = worst(code, optimizer_report(problem, args.optimizer, options, steps, console))
    ok = code == EXIT_AGREES
    if args.json:
        with writing(), open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"spec": spec.__dict__, "lr": problem.lr, "seed": args.seed, "data": about,
                       "rules": [report.to_dict() for report in reports],
                       "witness_rows": [row_dict(row) for row in witness_rows],
                       "finite_differences": {"enabled": bool(enabled), "every_entry": enabled == "all",
                                              "sampled_entries": sample},
                       "ok": ok, "exit_code": code}, handle, indent=2, default=list)
    return code
