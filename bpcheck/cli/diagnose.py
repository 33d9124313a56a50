"""``bpcheck diagnose RULE``: what explains each parameter where a rule disagrees."""

from __future__ import annotations

import argparse

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bpcheck.cli.exits import EXIT_AGREES, EXIT_USAGE, EXIT_WRONG
from bpcheck.cli.options import (
    INPUT_SHAPE_ALONE,
    build_parser,
    build_problem,
    described,
    known_rule,
    rule_names,
)
from bpcheck.cli.render import describe_factor, explained_by


def main(argv: list[str], console: Console) -> int:
    """``bpcheck diagnose RULE [network options]``: why RULE disagrees, on the problem the options
    describe (the same options as the comparison; RULE is a registered rule or a mutant)."""
    if argv[:1] in (["-h"], ["--help"]):
        from bpcheck.layers.train import STACK_RULES
        console.print(described(main.__doc__) + "\n\nusage: bpcheck diagnose RULE [network options]"
                      f"\n\nRULE: one of {rule_names()}\nnetwork options: as for "
                      "`bpcheck` (see bpcheck --help)\n\nWith --network LAYERS [--input-shape "
                      f"C,H,W|T,D|F]: RULE is one of {', '.join(STACK_RULES)}, run on random data "
                      "of the network; each layer is checked alone against torch, and what differs "
                      "is tried against a panel of nearby layers (docs/how-to/diagnose.md)",
                      markup=False)
        return EXIT_AGREES
    if not argv or argv[0].startswith("-"):
        console.print(f"[bold red]bpcheck diagnose: error:[/] name a rule: {rule_names()}")
        return EXIT_USAGE
    name, options = argv[0], argv[1:]
    try:
        args = build_parser("bpcheck diagnose RULE").parse_args(options)
        if args.network is not None:
            return _layers(name, args, console)
        rule = known_rule(name)
        if args.input_shape is not None:
            raise ValueError(INPUT_SHAPE_ALONE)
        problem, about = build_problem(args)
    except (ValueError, TypeError) as error:
        console.print(f"[bold red]bpcheck diagnose: error:[/] {escape(str(error))}")
        return EXIT_USAGE
    from bpcheck.mlp.diagnose import diagnose  # its nearby models are torch classes: torch loads now

    if rule.unsupported_reason(problem.spec):
        console.print(f"[bold red]bpcheck diagnose: error:[/] {name} is not defined on this network: "
                      f"{escape(rule.unsupported_reason(problem.spec))}")
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


def _layers(name: str, args: argparse.Namespace, console: Console) -> int:
    """``bpcheck diagnose RULE --network LAYERS``: each layer alone, and what explains it
    (``bpcheck.layers.diagnose``); 0 when every differing quantity is explained, as for an MLP."""
    from bpcheck.cli.network import (
        diagnosis_table,
        network_header,
        network_problem,
        network_rule,
        refuse_mlp_options,
    )

    network_rule(name)  # an unknown name before the network's errors
    refuse_mlp_options(args)
    problem = network_problem(args)
    rule = network_rule(name, problem.stack)
    from bpcheck.layers.diagnose import diagnose_layers  # torch loads now

    findings = diagnose_layers(rule, problem)
    console.width = max(console.width, 120)  # as the --network report: layer names and quantities
    console.print(f"[bold]{name}[/] on " + network_header(problem, args.seed), soft_wrap=True)
    if not findings:
        console.print(f"[green]{name} agrees with torch at every layer here: nothing to explain[/]")
        return EXIT_AGREES
    console.print(diagnosis_table(rule, findings))
    return EXIT_AGREES if all(f.explained_by for f in findings) else EXIT_WRONG
