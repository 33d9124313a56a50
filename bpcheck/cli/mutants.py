"""``bpcheck mutants``: the mutation gate — every catalogued wrong rule must be caught."""

from __future__ import annotations

import argparse

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bpcheck.cli.exits import EXIT_AGREES, EXIT_INCONCLUSIVE, EXIT_USAGE, EXIT_WRONG
from bpcheck.cli.options import INPUT_SHAPE_ALONE, Parser, described
from bpcheck.cli.progress import progress
from bpcheck.cli.render import describe_problem, describe_stack_problem
from bpcheck.cli.validators import (
    count_up_to,
    finite_difference_sample,
    finite_differences,
    input_shape,
    natural,
)
from bpcheck.core.runtime import MAX_EXAMPLES
from bpcheck.mlp.mutants import MUTANTS, hunt_mutant

#: ``--network`` given without a value: the layer catalogue.
CATALOGUE = True


def main(argv: list[str], console: Console) -> int:
    """``bpcheck mutants``: hunt every catalogued mutant; 0 when every one is caught. With
    ``--network``, the layer mutants instead (``--network`` alone: the layer catalogue)."""
    parser = Parser(prog="bpcheck mutants", description=described(main.__doc__))
    parser.add_argument("--examples", type=count_up_to(MAX_EXAMPLES), default=100,
                        help=f"random networks per mutant (default 100, at most {MAX_EXAMPLES})")
    parser.add_argument("--seed", type=natural, default=0, help="the searches' seed (default 0)")
    parser.add_argument("--finite-differences", type=finite_differences, default="off",
                        metavar="off|auto|all",
                        help="the finite-difference witness, as for the comparison: off (default: "
                             "torch and jax), auto (along random directions), all (every entry)")
    parser.add_argument("--show", action="store_true", help="print each minimal network in full")
    parser.add_argument("--network", nargs="?", const=CATALOGUE, default=None, metavar="LAYERS",
                        help="hunt the layer mutants (bpcheck/layers/mutants.py) instead. --network "
                             "alone: the layer catalogue, every layer mutant, each on random networks "
                             "of its own layer kind alone (then flatten; float64 or float32). "
                             "--network LAYERS (as for `bpcheck --network`; softmax-ce-labels/mean): "
                             "each mutant of a layer kind LAYERS has, on random values of it; one whose "
                             "mistake changes no draw (a stride mistake at stride 1) is not hunted "
                             "(exit 3 if none is)")
    parser.add_argument("--input-shape", type=input_shape, default=None, metavar="C,H,W|T,D|F",
                        help="one sample's shape for --network LAYERS (default 1,8,8)")
    args = parser.parse_args(argv)
    if isinstance(args.finite_differences, int):
        parser.error(f"argument --finite-differences: sample:{args.finite_differences} samples one "
                     "network's entries; a hunt draws many: give off, auto or all")
    args.finite_differences = finite_difference_sample(args.finite_differences)[0]
    if args.network is not None:
        return _layers(args, console)
    if args.input_shape is not None:
        console.print(f"[bold red]bpcheck mutants: error:[/] {INPUT_SHAPE_ALONE}")
        return EXIT_USAGE
    hunts = _hunted(list(MUTANTS.values()), lambda m: hunt_mutant(m, args.examples, args.seed,
                                                                   args.finite_differences),
                    "hunting mutants…", console)
    console.print(_table("mutation gate: each mutant is one deliberate bug in the derived rule",
                         hunts, lambda h: h.mutant.change, _mlp))
    if args.show:
        for h in hunts:
            if h.minimal is not None:
                console.print(f"[bold]{h.mutant.name}[/]\n{describe_problem(h.minimal)}")
    return _outcome(hunts, console)


def _hunted(mutants: list, hunt, description: str, console: Console) -> list:
    """``hunt(m)`` for each mutant, with a progress bar in a terminal (else a plain line every
    few seconds)."""
    hunts = []
    with progress(console, description, len(mutants)) as shown:
        for mutant in mutants:
            hunts.append(hunt(mutant))
            shown.advance()
    return hunts


def _mlp(h) -> str:
    spec = h.minimal.spec if h.minimal is not None else None
    return (f"{'-'.join(map(str, spec.sizes))} {','.join(spec.activations)} {spec.loss}/"
            f"{spec.reduction} {spec.bias} N={h.minimal.n_samples}" if spec else "—")


def _stack(h) -> str:
    p = h.minimal
    return escape(f"{p.stack.describe()} {p.stack.dtype} N={p.n_samples}") if p is not None else "—"


def _batch(h) -> str:  # of the one network given: its batch and dtype
    return f"N={h.minimal.n_samples} {h.minimal.stack.dtype}" if h.minimal is not None else "—"


def _table(title: str, hunts: list, change, network, unseen: tuple = ()) -> Table:
    """One row a hunt: the mutant, ``change(hunt)``, caught or not (not hunted: its name in
    ``unseen``), by which witnesses, after how many examples, ``network(hunt)``: the minimal one."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("mutant", no_wrap=True)  # whole, to be copied into `bpcheck diagnose`
    for column in ("the bug", "caught", "by", "examples", "minimal network"):
        table.add_column(column, overflow="fold")
    for h in hunts:
        caught = ("[yellow]not hunted[/]" if h.mutant.name in unseen else
                  "[green]caught[/]" if h.caught else "[bold red]MISSED[/]")
        table.add_row(h.mutant.name, change(h), caught, ", ".join(h.witnesses),
                      str(h.examples_to_catch or "—"), network(h))
    return table


def _outcome(hunts: list, console: Console, unseen: tuple = ()) -> int:
    """The closing lines and the exit code: 1 if a mutant is missed, 3 if none could be
    hunted (``unseen``: the names of those whose mistake changed no draw of the network), else 0."""
    for h in hunts:
        if h.mutant.name in unseen:
            console.print(f"[yellow]{h.mutant.name}: not hunted — {escape(h.unchecked)}[/]", soft_wrap=True)
    hunted = [h for h in hunts if h.mutant.name not in unseen]
    missed = [h.mutant.name for h in hunted if not h.caught]
    if not hunted:
        console.print("[yellow]no mutant's mistake changes anything on this network: none hunted[/]")
        return EXIT_INCONCLUSIVE
    besides = f" ({len(unseen)} not hunted)" if unseen else ""
    console.print(f"[bold red]missed: {', '.join(missed)}[/]{besides}" if missed else
                  f"[green]all {len(hunted)} {'hunted ' * bool(unseen)}mutants caught{besides}[/]")
    return EXIT_WRONG if missed else EXIT_AGREES


def _layers(args: argparse.Namespace, console: Console) -> int:
    """``bpcheck mutants --network [LAYERS]``: the layer mutants' gate."""
    from bpcheck.cli.network import check_network_memory, network_stack
    from bpcheck.layers.mutants import LAYER_MUTANTS, MUTANT_KINDS, hunt_layer_mutant
    from bpcheck.layers.train import untouched_by

    try:
        if args.network is CATALOGUE:
            if args.input_shape is not None:
                raise ValueError("--input-shape describes --network LAYERS; the catalogue (--network "
                                 "alone) draws each layer's own shapes")
            stack, rules = None, list(LAYER_MUTANTS.values())
        else:
            stack = network_stack(args.network, args.input_shape)
            rules = [rule for rule in LAYER_MUTANTS.values() if not untouched_by(rule, stack)]
            if not rules:
                raise ValueError(f"--network {args.network!r} has no layer a layer mutant changes "
                                 f"(of kinds {', '.join(dict.fromkeys(MUTANT_KINDS.values()))})")
            from bpcheck.layers.strategies import MAX_STACK_BATCH
            check_network_memory(stack, args.network, MAX_STACK_BATCH, f"(batches up to {MAX_STACK_BATCH})")
    except ValueError as error:
        console.print(f"[bold red]bpcheck mutants: error:[/] {escape(str(error))}", soft_wrap=True)
        return EXIT_USAGE
    console.width = max(console.width, 120)  # a network's description is longer than an MLP's
    hunts = _hunted(rules, lambda rule: hunt_layer_mutant(rule, args.examples, args.seed,
                                                          args.finite_differences, stack),
                    "hunting layer mutants…", console)
    where = ("each on its layer alone" if stack is None else
             f"on {stack.describe()}, {stack.loss}/{stack.reduction}")
    unseen = tuple(h.mutant.name for h in hunts if stack is not None and not h.checked)
    console.print(_table(f"mutation gate: each layer mutant is one deliberate bug in one layer kind's "
                         f"derived pair, {escape(where)}", hunts, lambda h: h.mutant.summary,
                         _stack if stack is None else _batch, unseen))
    if args.show:
        for h in hunts:
            if h.minimal is not None:
                console.print(f"[bold]{h.mutant.name}[/]\n{escape(describe_stack_problem(h.minimal))}")
    return _outcome(hunts, console, unseen)
