"""``bpcheck --network LAYERS``: every witness on a network of layers (``manual.stack``), with
the derived layers or a chosen mutant, and each differing rule's layer-by-layer diagnosis."""

from __future__ import annotations

import argparse
import json

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bpcheck.cli.exits import EXIT_USAGE, comparison_exit_code
from bpcheck.cli.interrupts import writing
from bpcheck.cli.limits import check_stack_scale
from bpcheck.cli.progress import progress
from bpcheck.cli.render import finite_difference_line, rule_table, summary_line, witness_line
from bpcheck.cli.validators import finite_difference_sample, unknown_name
from bpcheck.core.compare import row_dict, unsettled
from bpcheck.core.verdicts import DIFFERS, INCONCLUSIVE
from bpcheck.mlp.memory import check_memory

#: MLP options that say nothing about a network of layers: given with --network, a usage error.
MLP_ONLY = {"layers": "--layers", "activations": "--activations", "bias": "--bias", "layout": "--layout",
            "l2": "--l2", "l2_biases": "--l2-biases", "optimizer": "--optimizer", "data": "--data",
            "steps": "--steps", "optimizer_options": "--optimizer-options"}
MLP_ONLY_DEFAULTS = {"layers": None, "activations": None, "bias": "node", "layout": "cols", "l2": 0.0,
            "l2_biases": False, "optimizer": None, "data": "auto", "steps": None, "optimizer_options": None}


def _rules(names):
    from bpcheck.layers.compare import DERIVED
    from bpcheck.layers.mutants import LAYER_MUTANTS
    known = {DERIVED.name: DERIVED} | LAYER_MUTANTS
    unknown = [name for name in names or () if name not in known]
    if unknown:
        raise ValueError(f"--rules: unknown {unknown}; with --network expected names from {list(known)}")
    return [known[name] for name in names] if names else [DERIVED]


def network_rule(name: str, stack=None):
    """The derived rule or layer mutant ``name`` (``bpcheck.layers.train.STACK_RULES``), for
    ``stack`` if given; a ValueError for an unknown name (with the closest ones) or a mutant of
    a layer kind the network lacks, where it would be the derived rule."""
    from bpcheck.layers.train import STACK_RULES, untouched_by
    if name not in STACK_RULES:
        raise ValueError(unknown_name(name, STACK_RULES, where=" for --network"))
    if stack is not None and (note := untouched_by(STACK_RULES[name], stack)):
        raise ValueError(f"{name} is not defined on this network: {note}")
    return STACK_RULES[name]


def _data_note(stack) -> str:
    """What the header says of x and of a loss at every step."""
    note = "x holds integer tokens (no gradient)" if stack.tokens else "the input's gradient is row x"
    return note + ("; the loss is taken at every step, padded steps (random lengths) left out"
                   if stack.per_step else "")


def network_header(problem, seed: int) -> str:
    """The problem in one line (rich markup): the network, its loss, dtype, η, seed and data."""
    stack = problem.stack
    return (f"{escape(stack.describe())}; loss={stack.loss}/{stack.reduction} dtype={stack.dtype}; "
            f"η={problem.lr}; seed={seed}; random data ({problem.n_samples} samples); " + _data_note(stack))


def diagnosis_table(rule, findings) -> Table:
    table = Table(title=f"[bold]{rule.name}[/]: each layer alone against torch (float64, random dout)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("layer", "quantity", "rel err", "explained by"):
        table.add_column(column, overflow="fold")
    for f in findings:
        table.add_row(f"{f.layer} ({f.kind})", f.quantity, f"{f.error:.2e}",
                      "; ".join(f.explained_by) or "[yellow]no nearby layer explains it[/]")
    return table


def network_stack(text: str, shape: tuple[int, ...] | None = None, loss: str | None = None,
                  reduction: str | None = None, dtype: str = "float64"):
    """The ``manual.stack.Stack`` that ``--network`` and ``--input-shape`` (default 1,8,8)
    describe, under ``loss`` (default softmax-ce-labels) and ``reduction`` (default mean); a
    ValueError naming the option."""
    from manual.stack import Stack

    try:
        return Stack(text, shape or (1, 8, 8), loss or "softmax-ce-labels", reduction or "mean", dtype)
    except ValueError as error:  # the layers' words; the option's name where they lack it
        message = str(error) if "--" in str(error) else f"--network: {error}"
        if shape is None and "shape" in message:
            message += " (no --input-shape was given: the default 1,8,8 was used; give the samples' own)"
        raise ValueError(message) from None


def refuse_mlp_options(args: argparse.Namespace) -> None:
    """A ValueError naming the MLP options given beside ``--network``."""
    given = [option for key, option in MLP_ONLY.items() if getattr(args, key) != MLP_ONLY_DEFAULTS[key]]
    if given:
        raise ValueError(f"{', '.join(given)} describe{'s' * (len(given) == 1)} an MLP; with "
                         "--network the layers say it all")


def check_network_memory(stack, text: str, samples: int, batches: str) -> None:
    """A ValueError naming ``--network TEXT``, its input shape and ``batches`` where ``samples``
    samples of the network would not fit in memory (``bpcheck.mlp.memory.check_memory``)."""
    from manual.stack_checks import memory_bound
    check_memory(memory_bound(stack, samples), f"--network {text!r} on --input-shape "
                 f"{','.join(map(str, stack.input_shape))} {batches}")


def network_problem(args: argparse.Namespace):
    """The ``StackProblem`` the options describe: random data of ``--samples`` on the network
    (``network_stack``), within the memory and scale limits; a ValueError naming the option."""
    stack = network_stack(args.network, args.input_shape, args.loss, args.reduction, args.dtype)
    check_network_memory(stack, args.network, args.samples, f"with --samples {args.samples}")
    from bpcheck.layers.problem import random_problem
    try:
        problem = random_problem(stack, args.samples, args.seed, args.lr)
    except ValueError as error:
        raise ValueError(f"--samples {args.samples}: {error}") from None
    check_stack_scale(problem)
    return problem


def main_network(args: argparse.Namespace, console: Console) -> int:
    """The report for ``--network``; args as ``bpcheck.cli.options.build_parser`` parses them."""
    try:
        refuse_mlp_options(args)
        rules = _rules(args.rules)
        problem = network_problem(args)
    except (ValueError, TypeError) as error:
        console.print(f"[bold red]bpcheck: error:[/] {escape(str(error))}", soft_wrap=True)
        return EXIT_USAGE
    stack = problem.stack
    from bpcheck.layers.compare import compare_stack
    from bpcheck.layers.diagnose import diagnose_layers

    console.width = max(console.width, 120)  # parameter names and shapes are longer than W1 4×5

    console.print("[bold]network[/] " + network_header(problem, args.seed), soft_wrap=True)
    entries = problem.n_params + (0 if stack.tokens else problem.x.size)
    enabled, sample = finite_difference_sample(args.finite_differences)
    with progress(console, "witnesses") as shown:
        reports, witness_rows, _ = compare_stack(problem, rules, enabled, sample, shown.phase)
    line = finite_difference_line(enabled, sample, entries)
    console.print(line if stack.tokens else line.replace("parameter entries", "parameter and input entries"))
    from bpcheck.layers.compare import DERIVED
    from bpcheck.layers.train import untouched_by
    for rule in rules:  # a mutant of a kind the network lacks is the derived rule here
        if note := untouched_by(rule, stack):
            console.print(f"[yellow]{escape(note)}: it gets {DERIVED.name}'s verdict[/]", soft_wrap=True)
    for report in reports:
        console.print(rule_table(report))
        if report.verdict == DIFFERS:
            console.print(diagnosis_table(report.rule, diagnose_layers(report.rule, problem)))
    for report in reports:
        if report.verdict == INCONCLUSIVE and report.saturation:  # the reason says what to do
            console.print(f"[yellow]{report.rule.name}: inconclusive — no witness could settle "
                          f"{', '.join(unsettled(report.rows))}: {escape(report.saturation)}[/]")
        else:
            console.print(summary_line(report, stack.dtype))
    console.print(witness_line(witness_rows))
    code = comparison_exit_code(reports, witness_rows)
    if args.json:
        with writing(), open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"network": stack.describe(), "loss": stack.loss, "dtype": stack.dtype,
                       "seed": args.seed, "rules": [r.to_dict() for r in reports],
                       "witness_rows": [row_dict(row) for row in witness_rows], "exit_code": code},
                      handle, indent=2, default=list)
    return code
