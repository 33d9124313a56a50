"""``bpcheck diagnose RULE``: what explains each parameter where a rule disagrees."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from bpcheck.cli.exits import EXIT_AGREES, EXIT_USAGE, EXIT_WRONG
from bpcheck.cli.options import build_parser, build_problem, described, known_rule, rule_names
from bpcheck.cli.render import describe_factor, explained_by


def main(argv: list[str], console: Console) -> int:
    """``bpcheck diagnose RULE [network options]``: why RULE disagrees, on the problem the options
    describe (the same options as the comparison; RULE is a registered rule or a mutant)."""
    if argv[:1] in (["-h"], ["--help"]):
        console.print(described(main.__doc__) + "\n\nusage: bpcheck diagnose RULE [network options]"
                      f"\n\nRULE: one of {rule_names()}\nnetwork options: as for "
                      "`bpcheck` (see bpcheck --help)", markup=False)
        return EXIT_AGREES
    if not argv or argv[0].startswith("-"):
        console.print(f"[bold red]bpcheck diagnose: error:[/] name a rule: {rule_names()}")
        return EXIT_USAGE
    name, options = argv[0], argv[1:]
    try:
        rule = known_rule(name)
        problem, about = build_problem(build_parser().parse_args(options))
    except (ValueError, TypeError) as error:
        console.print(f"[bold red]bpcheck diagnose: error:[/] {error}")
        return EXIT_USAGE
    from bpcheck.diagnose import diagnose  # its nearby models are torch classes: torch loads now

    if rule.unsupported_reason(problem.spec):
        console.print(f"{name}: not defined here — {rule.unsupported_reason(problem.spec)}")
        return EXIT_USAGE
    directions = rule.directions(problem.spec, problem.params, problem.X, problem.Y, problem.lr)
    explanations = diagnose(directions, problem)
    spec = problem.spec
    console.print(f"[bold]{name}[/] on sizes={spec.sizes} activations={spec.activations} "
                  f"loss={spec.loss}/{spec.reduction} bias={spec.bias} η={problem.lr}; {about}")
    if not explanations:
        console.print(f"[green]{name} agrees with the exact gradient here: nothing to explain[/]")
        return EXIT_AGREES
    table = Table(title="what explains each disagreeing parameter (within the comparison's tolerance)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("param", "explained by", "factor", "residual"):
        table.add_column(column, overflow="fold")
    for e in explanations:
        cause = explained_by(e) if e.hypotheses else "[bold red]nothing in the panel[/]"
        table.add_row(e.parameter, cause, describe_factor(e.factor, problem.n_samples),
                      f"{e.residual:.2e}")
    console.print(table)
    return EXIT_AGREES if all(e.hypotheses for e in explanations) else EXIT_WRONG
