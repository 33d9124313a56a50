"""The ``bpcheck`` command: compare every registered rule with every witness."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from manual.init import truncated_normal
from manual.optim import OPTIMIZERS, hyperparameters
from manual.rules import RULES
from manual.spec import ACTIVATIONS, BIAS_STYLES, DTYPES, LAYOUTS, LOSSES, REDUCTIONS, Spec
from study.compare import Problem, Row, RuleReport, compare_all
from study.data import IRIS_CLASSES, IRIS_FEATURES, iris_data, iris_split, random_data, seed_hidden_width
from study.optim_cli import optimizer_report, parse_options
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
    parser.add_argument("--samples", type=int, default=8, help="batch size for --data random")
    parser.add_argument("--lr", type=float, default=0.001, help="learning rate η")
    parser.add_argument("--seed", type=int, default=0, help="seeds data order, width and init")
    parser.add_argument("--rules", type=_name_list, default=None, metavar="R1,R2",
                        help=f"rules to compare (default: all of {list(RULES)})")
    parser.add_argument("--optimizer", choices=list(OPTIMIZERS), default=None,
                        help="also train with this optimizer for --steps steps: manual gradients + "
                             "manual optimizer vs autodiff + torch.optim / optax, error per step")
    parser.add_argument("--optimizer-options", metavar="K=V,…", default=None,
                        help="hyperparameters besides --lr, e.g. beta1=0.8,eps_placement=inside")
    parser.add_argument("--steps", type=int, default=10, help="training steps for --optimizer")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
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


def _fmt(value: float) -> str:
    return f"{value:.2e}" if np.isfinite(value) else str(value)


def rule_table(report: RuleReport, only_disagreements: bool = False) -> Table:
    """One row per parameter × quantity × witness; errors relative to the truth's ∞-norm."""
    rule = report.rule
    claim = "claims correct" if rule.claims_correct else "known wrong"
    table = Table(title=f"[bold]{rule.name}[/] ({claim}): {rule.summary}",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("param", "quantity", "witness", "max |err|", "at", "rel err", "tolerance",
                   "cosine", "verdict"):
        table.add_column(column, no_wrap=True,
                         justify="left" if column in ("param", "quantity", "witness") else "right")
    for row in report.rows:
        if only_disagreements and row.agrees:
            continue
        verdict = "[green]agrees[/]" if row.agrees else "[bold red]DIFFERS[/]"
        table.add_row(f"{row.parameter} {'×'.join(map(str, row.shape))}", row.quantity,
                      row.witness, _fmt(row.error.max_abs), ",".join(map(str, row.error.where)),
                      _fmt(row.error.rel), _fmt(row.tolerance), f"{row.error.cosine:.6f}", verdict)
    return table


def summary_line(report: RuleReport) -> str:
    name = report.rule.name
    if report.unsupported:
        return f"{name}: not run — {report.unsupported}"
    if report.agrees:
        return f"[green]{name}: agrees with every witness[/]"
    wrong = sorted({row.parameter for row in report.rows if not row.agrees})
    if report.rule.claims_correct:
        return f"[bold red]{name}: DIFFERS on {', '.join(wrong)} — a rule that claims to be correct[/]"
    return f"[yellow]{name}: differs on {', '.join(wrong)}, as expected of a known-wrong rule[/]"


def witness_line(rows: list[Row]) -> str:
    bad = [f"{row.rule} ({row.quantity} {row.parameter})" for row in rows if not row.agrees]
    if bad:
        return "[bold red]witnesses disagree among themselves: " + "; ".join(bad) + "[/]"
    return "[green]witnesses agree among themselves (torch, jax, finite differences)[/]"


def verify_main(argv: list[str], console: Console) -> int:
    """``bpcheck verify MODULE:NAME``: property-check a user rule; 0 if it agrees, 1 if not."""
    parser = argparse.ArgumentParser(prog="bpcheck verify", description=verify_main.__doc__)
    parser.add_argument("target", help="MODULE:NAME of a UserActivation or UserLoss "
                                       "(MODULE may be a .py path)")
    parser.add_argument("--examples", type=int, default=200, help="random networks to try")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        rule = load_user_rule(args.target)
    except (ImportError, ValueError, TypeError) as error:
        console.print(f"[bold red]bpcheck verify: error:[/] {error}")
        return 2
    with console.status(f"checking {rule.name} inside random networks against torch, jax and "
                        "finite differences…"):
        verdict = verify(rule, args.examples, args.seed)
    if verdict.failure is None:
        console.print(f"[green]{rule.name}: {verdict.examples} random networks agree with every "
                      "witness[/]")
        return 0
    console.print(f"[bold red]{rule.name}: WRONG[/] — the smallest network Hypothesis found that "
                  f"shows it:\n{describe_problem(verdict.failure)}")
    console.print(rule_table(verdict.report, only_disagreements=True))
    console.print(summary_line(verdict.report))
    return 1


def describe_problem(problem: Problem) -> str:
    """Everything needed to rebuild a problem, printed in full."""
    spec = problem.spec
    with np.printoptions(precision=17, threshold=10_000):
        arrays = "\n".join(f"  {name} = {np.array2string(value, separator=', ')}"
                           for name, value in {**problem.params, "X": problem.X, "Y": problem.Y}.items())
    return (f"  sizes={spec.sizes} activations={spec.activations} loss={spec.loss}/{spec.reduction} "
            f"l2={spec.l2} bias={spec.bias} layout={spec.layout} dtype={spec.dtype} "
            f"lr={problem.lr}\n{arrays}")


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
        console.print(f"[bold red]bpcheck: error:[/] {error}")
        return 2
    spec = problem.spec
    console.print(f"[bold]network[/] sizes={spec.sizes} activations={spec.activations} "
                  f"loss={spec.loss}/{spec.reduction} l2={spec.l2} bias={spec.bias} "
                  f"layout={spec.layout} dtype={spec.dtype}; η={problem.lr}; seed={args.seed}; {about}")
    reports, witness_rows = compare_all(problem, list(args.rules) if args.rules else None)
    for report in reports:
        if report.rows:
            console.print(rule_table(report))
    for report in reports:
        console.print(summary_line(report))
    console.print(witness_line(witness_rows))
    ok = all(report.as_claimed for report in reports) and all(row.agrees for row in witness_rows)
    if args.optimizer:
        ok &= optimizer_report(problem, args.optimizer, options, args.steps, console)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"spec": spec.__dict__, "lr": problem.lr, "seed": args.seed, "data": about,
                       "rules": [report.to_dict() for report in reports],
                       "witness_rows": [row.__dict__ | {"error": row.error.__dict__}
                                        for row in witness_rows],
                       "ok": ok}, handle, indent=2, default=list)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
