"""``bpcheck sweep RULE``: a rule's discrepancy against each setting, as a table and a PNG."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from bpcheck.cli.exits import EXIT_AGREES, EXIT_USAGE
from bpcheck.cli.options import Parser, described, known_rule, rule_names
from bpcheck.cli.plots import plot_sweep
from bpcheck.cli.progress import progress
from bpcheck.cli.validators import FIGURE, MAX_REPEATS, count_up_to, output_path
from bpcheck.mlp.sweep import AXES, BASE, sweep


def main(argv: list[str], console: Console) -> int:
    """``bpcheck sweep RULE``: the rule's discrepancy against each setting, as a table and a PNG."""
    parser = Parser(prog="bpcheck sweep", description=described(main.__doc__))
    parser.add_argument("rule", help=f"a registered rule or mutant, from {rule_names()}")
    parser.add_argument("--repeats", type=count_up_to(MAX_REPEATS), default=5,
                        help=f"random problems per point (default 5, at most {MAX_REPEATS})")
    parser.add_argument("--out", type=output_path("--out", FIGURE), default="bpcheck-sweep.png",
                        help="the plot's file, .png, .pdf or .svg (default bpcheck-sweep.png)")
    args = parser.parse_args(argv)
    try:
        rule = known_rule(args.rule)
    except ValueError as error:
        console.print(f"[bold red]bpcheck sweep: error:[/] {error}")
        return EXIT_USAGE
    with progress(console, "sweeping", sum(map(len, AXES.values()))) as shown:
        points = sweep(rule, args.repeats, shown.advance)
    table = Table(title=f"{rule.name}: relative error of its direction vs torch, one setting changed "
                        f"from {BASE}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("setting", "value", "median", "largest", "problems"):
        table.add_column(column, justify="left" if column == "setting" else "right")
    for p in points:
        table.add_row(p.axis, str(p.value), f"{p.median:.3e}", f"{p.largest:.3e}", str(p.problems))
    console.print(table)
    plot_sweep(points, rule.name, args.out)
    console.print(f"wrote {args.out}")
    return EXIT_AGREES
