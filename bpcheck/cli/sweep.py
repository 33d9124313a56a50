"""``bpcheck sweep RULE [--network LAYERS]``: a rule's discrepancy against each setting, as a
table and a PNG; an MLP rule on the MLP's settings, a layer rule on a network of layers'."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bpcheck.cli.exits import EXIT_AGREES, EXIT_USAGE
from bpcheck.cli.options import Parser, described, known_rule, rule_names
from bpcheck.cli.plots import plot_sweep
from bpcheck.cli.progress import progress
from bpcheck.cli.validators import FIGURE, MAX_REPEATS, count_up_to, input_shape, output_path


def main(argv: list[str], console: Console) -> int:
    """``bpcheck sweep RULE``: the rule's discrepancy against each setting, as a table and a PNG.
    With ``--network LAYERS``, RULE is the derived layers or a layer mutant, swept over the
    network's dtype, batch and input scale."""
    parser = Parser(prog="bpcheck sweep", description=described(main.__doc__))
    parser.add_argument("rule", help=f"a registered rule or mutant, from {rule_names()}; with "
                                     "--network, derived or a layer mutant (bpcheck mutants --network)")
    parser.add_argument("--network", metavar="LAYERS", default=None,
                        help="sweep a network of layers instead of the MLP (as bpcheck --network)")
    parser.add_argument("--input-shape", type=input_shape, default=None, metavar="C,H,W|T,D|F",
                        help="one sample's shape for --network (default 1,8,8)")
    parser.add_argument("--repeats", type=count_up_to(MAX_REPEATS), default=5,
                        help=f"random problems per point (default 5, at most {MAX_REPEATS})")
    parser.add_argument("--out", type=output_path("--out", FIGURE), default="bpcheck-sweep.png",
                        help="the plot's file, .png, .pdf or .svg (default bpcheck-sweep.png)")
    args = parser.parse_args(argv)
    try:
        rule, run, axes, base, quantity = _family(args)
    except ValueError as error:
        console.print(f"[bold red]bpcheck sweep: error:[/] {escape(str(error))}", soft_wrap=True)
        return EXIT_USAGE
    with progress(console, "sweeping", sum(map(len, axes.values()))) as shown:
        points = run(args.repeats, shown.advance)
    table = Table(title=f"{rule.name}: relative error of its {quantity} vs torch, one setting changed "
                        f"from {base}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("setting", "value", "median", "largest", "problems"):
        table.add_column(column, justify="left" if column == "setting" else "right")
    for p in points:
        table.add_row(p.axis, str(p.value), f"{p.median:.3e}", f"{p.largest:.3e}", str(p.problems))
    console.print(table)
    plot_sweep(points, rule.name, args.out, axes, quantity)
    console.print(f"wrote {args.out}")
    return EXIT_AGREES


def _family(args):
    """(rule, run(repeats, on_point), axes, base, what is compared) for the MLP or ``--network``;
    a ValueError naming what is wrong."""
    if args.network is None:
        if args.input_shape is not None:
            raise ValueError("--input-shape needs --network")
        from bpcheck.mlp.sweep import AXES, BASE, sweep
        rule = known_rule(args.rule)
        return rule, lambda repeats, on_point: sweep(rule, repeats, on_point), AXES, BASE, "direction"
    from bpcheck.cli.network import check_network_memory, network_rule, network_stack
    from bpcheck.layers.sweep import AXES, BASE, sweep
    network_rule(args.rule)  # an unknown name before the network's errors
    stack = network_stack(args.network, args.input_shape)
    rule = network_rule(args.rule, stack)
    largest = max(AXES["batch"])
    check_network_memory(stack, args.network, largest, f"at the sweep's largest batch, {largest}")
    return (rule, lambda repeats, on_point: sweep(rule, stack, repeats, on_point), AXES,
            {"network": stack.describe(), **BASE}, "gradient")
