"""The ``bpcheck`` command: compare every registered rule with every witness."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from manual.init import truncated_normal
from manual.optim import OPTIMIZERS, hyperparameters
from manual.rules import RULES
from manual.spec import ACTIVATIONS, BIAS_STYLES, DTYPES, LAYOUTS, LOSSES, REDUCTIONS, Spec
from study.arguments import (
    finite_difference_sample,
    finite_differences,
    natural,
    output_path,
    positive_int,
)
from study.compare import INCONCLUSIVE, Problem, Row, RuleReport, compare_all, row_dict
from study.data import IRIS_CLASSES, IRIS_FEATURES, iris_data, iris_split, random_data, seed_hidden_width
from study.optim_cli import optimizer_report, parse_options
from study.render import describe_problem, finite_difference_line, rule_table, summary_line, witness_line
from study.verify import load_user_rule, verify


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _name_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(","))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bpcheck",
        description="Compare hand-derived backpropagation rules with PyTorch, JAX and finite "
                    "differences. Without options: the seed's network on iris. "
                    "`bpcheck verify MODULE:NAME` property-checks your own activation or loss; "
                    "`bpcheck optim` tabulates where torch.optim and optax differ.",
    )
    parser.add_argument("--layers", type=_int_list, metavar="F,H,…,C",
                        help="layer widths (default: the seed program's 4,H,3 with its random H)")
    parser.add_argument("--activations", type=_name_list, default=None, metavar="A,…",
                        help=f"one per layer after the input, from {list(ACTIVATIONS)} "
                             "(leaky_relu:SLOPE sets a slope; default: sigmoid everywhere)")
    parser.add_argument("--loss", default="half-sse", choices=LOSSES)
    parser.add_argument("--l2", type=float, default=0.0, help="λ of the penalty λ/2 Σ‖W‖²")
    parser.add_argument("--reduction", default="sum", choices=REDUCTIONS)
    parser.add_argument("--bias", default="node", choices=BIAS_STYLES)
    parser.add_argument("--layout", default="cols", choices=LAYOUTS)
    parser.add_argument("--dtype", default="float64", choices=DTYPES,
                        help="dtype the rules compute in (witnesses always use float64)")
    parser.add_argument("--data", default="auto", choices=("auto", "iris", "random"),
                        help="auto: iris when the layers are 4,…,3, else random")
    parser.add_argument("--samples", type=positive_int, default=8, help="batch size for --data random")
    parser.add_argument("--lr", type=float, default=0.001, help="learning rate η")
    parser.add_argument("--seed", type=natural, default=0, help="seeds data order, width and init")
    parser.add_argument("--rules", type=_name_list, default=None, metavar="R1,R2",
                        help=f"rules to compare (default: all of {list(RULES)})")
    parser.add_argument("--optimizer", choices=list(OPTIMIZERS), default=None,
                        help="also train with this optimizer for --steps steps: manual gradients + "
                             "manual optimizer vs autodiff + torch.optim / optax, error per step")
    parser.add_argument("--optimizer-options", metavar="K=V,…", default=None,
                        help="hyperparameters besides --lr, e.g. beta1=0.8,eps_placement=inside")
    parser.add_argument("--steps", type=int, default=10, help="training steps for --optimizer")
    parser.add_argument("--finite-differences", type=finite_differences, default="auto",
                        metavar="all|off|auto|sample:K",
                        help="which parameter entries finite differences check: all, none, K random "
                             "ones, or auto (all up to 5,000 parameters, else 500 random ones)")
    parser.add_argument("--json", metavar="PATH", type=output_path("--json"),
                        help="also write the results as JSON (its directory must exist)")
    return parser


def build_problem(args: argparse.Namespace) -> tuple[Problem, str]:
    """The problem the options describe, and a one-line description of its data."""
    rng = np.random.default_rng(args.seed)
    fits_iris = args.layers is None or (args.layers[0], args.layers[-1]) == (IRIS_FEATURES, IRIS_CLASSES)
    source = ("iris" if fits_iris else "random") if args.data == "auto" else args.data
    layers = args.layers
    if layers is None:
        n_train = len(iris_split(np.random.default_rng(args.seed))[1])
        layers = (IRIS_FEATURES, seed_hidden_width(n_train, rng), IRIS_CLASSES)
    activations = args.activations or ("sigmoid",) * (len(layers) - 1)
    spec = Spec(layers, activations, args.loss, args.reduction, args.bias, args.layout, args.dtype,
                args.l2)
    if source == "iris":
        X, Y = iris_data(spec, rng)
        about = f"iris training split ({len(X) if args.layout == 'rows' else X.shape[1]} samples)"
    else:
        X, Y = random_data(spec, args.samples, rng)
        about = f"random data ({args.samples} samples)"
    return Problem(spec, truncated_normal(spec, rng), X, Y, args.lr), about


#: Exit codes: every rule as claimed and the witnesses agree; a claims-correct rule (or a
#: witness) differs; bad usage; nothing differs but some verdict is inconclusive.
EXIT_AGREES, EXIT_DIFFERS, EXIT_USAGE, EXIT_INCONCLUSIVE = 0, 1, 2, 3


def exit_code(reports: list[RuleReport], witness_rows: list[Row]) -> int:
    """EXIT_DIFFERS if a claims-correct rule or a witness differs, EXIT_INCONCLUSIVE if a
    claims-correct rule is inconclusive, else EXIT_AGREES. (Witness pairs that cannot settle
    are reported; they leave the rules' verdicts to the witnesses that can.)"""
    if not all(report.as_claimed for report in reports) or any(row.differs for row in witness_rows):
        return EXIT_DIFFERS
    if any(r.verdict == INCONCLUSIVE for r in reports if r.rule.claims_correct):
        return EXIT_INCONCLUSIVE
    return EXIT_AGREES


def verify_main(argv: list[str], console: Console) -> int:
    """``bpcheck verify MODULE:NAME``: property-check a user rule; 0 if it agrees, 1 if not (it
    differs, its code raised, or no network could be checked), 2 on bad usage."""

    parser = argparse.ArgumentParser(prog="bpcheck verify", description=verify_main.__doc__)
    parser.add_argument("target", help="MODULE:NAME of a UserActivation or UserLoss "
                                       "(MODULE may be a .py path)")
    parser.add_argument("--examples", type=positive_int, default=200, help="random networks to try")
    parser.add_argument("--seed", type=natural, default=0)
    args = parser.parse_args(argv)
    try:
        rule = load_user_rule(args.target)
    except (ImportError, ValueError, TypeError) as error:
        console.print(f"[bold red]bpcheck verify: error:[/] {escape(str(error))}", soft_wrap=True)
        return 2
    with console.status(f"checking {rule.name} inside random networks against torch, jax and "
                        "finite differences…"):
        verdict = verify(rule, args.examples, args.seed)
    if verdict.raised is not None:
        who = f"your {verdict.part}" if verdict.part else "checking it"
        where = ("" if verdict.raised_on is None else
                 f" on this minimal network:\n{escape(describe_problem(verdict.raised_on))}")
        console.print(f"[bold red]{rule.name}: {who} raised[/] {escape(repr(verdict.raised))}{where}")
        return 1
    if verdict.failure is None and verdict.examples == 0:
        console.print(f"[bold red]{rule.name}: NOT VERIFIED[/] — no network was checked: "
                      f"{escape(verdict.unchecked_reason())}")
        return 1
    if verdict.failure is None:
        console.print(f"[green]{rule.name}: {verdict.examples} random networks agree with every "
                      "witness[/]")
        return 0
    console.print(f"[bold red]{rule.name}: WRONG[/] — the smallest network Hypothesis found that "
                  f"shows it:\n{describe_problem(verdict.failure)}")
    console.print(rule_table(verdict.report, only_disagreements=True))
    console.print(summary_line(verdict.report))
    return 1


#: ``bpcheck NAME …`` → the function that runs it, imported only when asked for.
SUBCOMMANDS = {
    "optim": "study.optim_cli:optim_main",
    "diagnose": "study.diagnose:diagnose_main",
    "mutants": "study.mutants:mutants_main",
    "train": "study.train:train_main",
    "sweep": "study.sweep:sweep_main",
    "report": "study.report:report_main",
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    console = Console(width=max(Console().width, 100))
    if argv[:1] == ["verify"]:
        return verify_main(argv[1:], console)
    if argv[:1] and argv[0] in SUBCOMMANDS:
        module, function = SUBCOMMANDS[argv[0]].split(":")
        return getattr(importlib.import_module(module), function)(argv[1:], console)
    if argv[:1] == ["compare"]:
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    try:
        unknown = [name for name in args.rules or () if name not in RULES]
        if unknown:
            raise ValueError(f"--rules: unknown {unknown}; expected names from {list(RULES)}")
        problem, about = build_problem(args)
        options = parse_options(args.optimizer_options)
        if args.optimizer:
            hyperparameters(args.optimizer, lr=args.lr, **options)  # refuse bad settings up front
            if args.steps < 1:
                raise ValueError("--steps must be ≥ 1")
    except (ValueError, TypeError) as error:
        console.print(f"[bold red]bpcheck: error:[/] {escape(str(error))}", soft_wrap=True)
        return 2
    spec = problem.spec
    console.print(f"[bold]network[/] sizes={spec.sizes} activations={spec.activations} "
                  f"loss={spec.loss}/{spec.reduction} l2={spec.l2} bias={spec.bias} "
                  f"layout={spec.layout} dtype={spec.dtype}; η={problem.lr}; seed={args.seed}; {about}")
    enabled, sample = finite_difference_sample(args.finite_differences, problem.n_params)
    with Progress(*Progress.get_default_columns(), console=console, transient=True) as progress:
        task = progress.add_task("finite differences", total=None)
        reports, witness_rows = compare_all(
            problem, list(args.rules) if args.rules else None, finite_differences=enabled,
            fd_sample=sample, progress=lambda done, total: progress.update(task, completed=done, total=total))
    console.print(finite_difference_line(enabled, sample, problem.n_params))
    for report in reports:
        if report.rows:
            console.print(rule_table(report))
    for report in reports:
        console.print(summary_line(report, spec.dtype))
    console.print(witness_line(witness_rows))
    code = exit_code(reports, witness_rows)
    if args.optimizer and not optimizer_report(problem, args.optimizer, options, args.steps, console):
        code = EXIT_DIFFERS
    ok = code == EXIT_AGREES
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"spec": spec.__dict__, "lr": problem.lr, "seed": args.seed, "data": about,
                       "rules": [report.to_dict() for report in reports],
                       "witness_rows": [row_dict(row) for row in witness_rows],
                       "finite_differences": {"enabled": enabled, "sampled_entries": sample},
                       "ok": ok, "exit_code": code}, handle, indent=2, default=list)
    return code


if __name__ == "__main__":
    sys.exit(main())
