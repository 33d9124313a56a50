"""``bpcheck mutants``: the mutation gate — every catalogued wrong rule must be caught."""

from __future__ import annotations

import argparse

from rich import box
from rich.console import Console
from rich.progress import track
from rich.table import Table

from bpcheck.cli.exits import EXIT_AGREES, EXIT_WRONG
from bpcheck.cli.options import count_up_to, described, natural
from bpcheck.cli.render import describe_problem
from bpcheck.mutants import MUTANTS, hunt_mutant
from bpcheck.runtime import MAX_EXAMPLES


def main(argv: list[str], console: Console) -> int:
    """``bpcheck mutants``: hunt every catalogued mutant; 0 when every one is caught."""
    parser = argparse.ArgumentParser(prog="bpcheck mutants", description=described(main.__doc__))
    parser.add_argument("--examples", type=count_up_to(MAX_EXAMPLES), default=100,
                        help=f"random networks per mutant (default 100, at most {MAX_EXAMPLES})")
    parser.add_argument("--seed", type=natural, default=0, help="the searches' seed (default 0)")
    parser.add_argument("--finite-differences", action="store_true",
                        help="also ask the finite-difference witness (slower)")
    parser.add_argument("--show", action="store_true", help="print each minimal network in full")
    args = parser.parse_args(argv)
    hunts = [hunt_mutant(m, args.examples, args.seed, args.finite_differences)
             for m in track(list(MUTANTS.values()), description="hunting mutants…", console=console)]
    table = Table(title="mutation gate: each mutant is one deliberate bug in the derived rule",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("mutant", "the bug", "caught", "by", "examples", "minimal network"):
        table.add_column(column, overflow="fold")
    for h in hunts:
        spec = h.minimal.spec if h.minimal is not None else None
        network = (f"{'-'.join(map(str, spec.sizes))} {','.join(spec.activations)} {spec.loss}/"
                   f"{spec.reduction} {spec.bias} N={h.minimal.n_samples}" if spec else "—")
        table.add_row(h.mutant.name, h.mutant.change,
                      "[green]caught[/]" if h.caught else "[bold red]MISSED[/]", ", ".join(h.witnesses),
                      str(h.examples_to_catch or "—"), network)
    console.print(table)
    if args.show:
        for h in hunts:
            if h.minimal is not None:
                console.print(f"[bold]{h.mutant.name}[/]\n{describe_problem(h.minimal)}")
    missed = [h.mutant.name for h in hunts if not h.caught]
    console.print(f"[bold red]missed: {', '.join(missed)}[/]" if missed else
                  f"[green]all {len(hunts)} mutants caught[/]")
    return EXIT_WRONG if missed else EXIT_AGREES
