"""``bpcheck report RULE --html PATH | --markdown PATH``: one self-contained file about a rule.

The file holds the comparison table on the chosen network, the diagnosis, the sweep (table and
plot) and training curves on iris for the rule beside ``derived``; the plots are PNGs embedded
as data: URIs, so the file needs nothing beside it.
"""

from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.markup import escape

from bpcheck.cli.exits import EXIT_AGREES, EXIT_USAGE
from bpcheck.cli.interrupts import writing
from bpcheck.cli.options import Parser, build_parser, build_problem, described, known_rule, rule_names
from bpcheck.cli.plots import plot_curves, plot_sweep
from bpcheck.cli.progress import progress
from bpcheck.cli.render import describe_factor, explained_by, inconclusive_advice
from bpcheck.cli.report_network import network_sections
from bpcheck.cli.validators import HTML, MARKDOWN, MAX_EPOCHS, count_up_to, output_path
from bpcheck.core.datasets import split
from bpcheck.core.verdicts import DIFFERS, INCONCLUSIVE
from bpcheck.mlp.compare import ask_witnesses, compare_rule
from bpcheck.mlp.problem import Problem
from bpcheck.mlp.sweep import AXES, sweep
from bpcheck.mlp.train import seed_program_spec, train_curve
from manual.initialisers import truncated_normal
from manual.rules import RULES

Table = tuple[list[str], list[list[str]]]  # header, rows


def _png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def sections(rule, problem: Problem, epochs: int, lrs: tuple[float, ...],
             say=lambda what: None) -> list[tuple[str, object]]:
    """(heading, content) pairs; content is text, a Table, or a PNG data URI (str starting data:);
    ``say(what)`` names each part as it starts."""
    from bpcheck.mlp.diagnose import diagnose  # its nearby models are torch classes: torch loads now

    spec = problem.spec
    say("comparing with the witnesses")
    report = compare_rule(rule, problem, ask_witnesses(problem))
    rows = [[r.parameter, r.quantity, r.witness, f"{r.error.max_abs:.2e}", f"{r.error.rel:.2e}",
             f"{r.tolerance:.2e}", r.verdict] for r in report.rows]
    out: list[tuple[str, object]] = [
        ("Network", f"sizes={spec.sizes} activations={spec.activations} loss={spec.loss}/"
                    f"{spec.reduction} bias={spec.bias} layout={spec.layout} dtype={spec.dtype} "
                    f"η={problem.lr}, {problem.n_samples} samples"),
        ("Comparison with the witnesses", (["param", "quantity", "witness", "max |err|", "rel err",
                                            "tolerance", "verdict"], rows) if rows else
         f"not run: {report.unsupported}"),
    ]
    if report.rows and report.verdict == DIFFERS:
        say("diagnosing")
        directions = rule.directions(spec, problem.params, problem.X, problem.Y, problem.lr)
        found = diagnose(directions, problem)
        out.append(("Diagnosis", (["param", "explained by", "factor", "residual"],
                                  [[e.parameter, explained_by(e),
                                    describe_factor(e.factor, problem.n_samples), f"{e.residual:.2e}"]
                                   for e in found])))
    elif report.verdict == INCONCLUSIVE:
        why = inconclusive_advice(report.saturation, spec.dtype)
        out.append(("Diagnosis", f"inconclusive here, nothing to explain: {why}"))
    else:
        out.append(("Diagnosis", "the rule agrees with every witness here: nothing to explain"))
    with tempfile.TemporaryDirectory() as scratch:
        say("sweeping")
        points = sweep(rule, repeats=3)
        plot_sweep(points, rule.name, Path(scratch) / "sweep.png", AXES)
        out.append(("Sweep: relative error by setting",
                    (["setting", "value", "median", "largest"],
                     [[p.axis, str(p.value), f"{p.median:.3e}", f"{p.largest:.3e}"] for p in points])))
        out.append(("Sweep plot", _png(Path(scratch) / "sweep.png")))
        counted = f"{epochs} epoch{'s' * (epochs != 1)}"
        say(f"training on iris ({counted})")
        data = split("iris", 0)
        train_spec = seed_program_spec(data, None, 0)
        start = truncated_normal(train_spec, np.random.default_rng(0))
        rules = [r for r in {RULES["derived"].name: RULES["derived"], rule.name: rule}.values()
                 if not r.unsupported_reason(train_spec)]
        curves = [train_curve(r, train_spec, start, data, lr, epochs, 10, 0, "iris")
                  for r in rules for lr in lrs]
        plot_curves(curves, "iris", Path(scratch) / "train.png")
        out.append((f"Training on iris ({'-'.join(map(str, train_spec.sizes))}, {counted}, "
                     "same start and order)",
                     (["rule", "η", "final loss", "test accuracy"],
                      [[c.rule, f"{c.lr:g}", f"{c.loss[-1]:.4g}", f"{c.test_accuracy[-1]:.3f}"]
                       for c in curves])))
        out.append(("Training curves", _png(Path(scratch) / "train.png")))
    return out


def _markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def to_markdown(title: str, parts: list[tuple[str, object]]) -> str:
    lines = [f"# {title}", ""]
    for heading, content in parts:
        lines += [f"## {heading}", ""]
        if isinstance(content, tuple):
            header, rows = content
            lines += [_markdown_row(header), "|" + "---|" * len(header)]
            lines += [_markdown_row(row) for row in rows]
        elif content.startswith("data:image"):
            lines.append(f"![{heading}]({content})")
        else:
            lines.append(content)
        lines.append("")
    return "\n".join(lines)


def to_html(title: str, parts: list[tuple[str, object]]) -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    for heading, content in parts:
        body.append(f"<h2>{html.escape(heading)}</h2>")
        if isinstance(content, tuple):
            header, rows = content
            body.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
            body += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows]
            body.append("</table>")
        elif content.startswith("data:image"):
            body.append(f'<img alt="{html.escape(heading)}" src="{content}">')
        else:
            body.append(f"<p>{html.escape(content)}</p>")
    style = ("body{font-family:sans-serif;max-width:72rem;margin:2rem auto}table{border-collapse:"
             "collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:right}"
             "img{max-width:100%}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")


def _rule_and_problem(args):
    """The rule and problem the options describe: an MLP's, or with ``--network`` a layer rule
    (the derived layers or a layer mutant) on the network's random data."""
    if args.network is None:
        rule = known_rule(args.rule)
        return rule, build_problem(args)[0]
    from bpcheck.cli.network import network_problem, network_rule, refuse_mlp_options
    network_rule(args.rule)  # an unknown name before the network's errors
    refuse_mlp_options(args)
    problem = network_problem(args)
    return network_rule(args.rule, problem.stack), problem


def main(argv: list[str], console: Console) -> int:
    """``bpcheck report RULE (--html PATH | --markdown PATH) [network options]``."""
    parser = Parser(prog="bpcheck report", description=described(main.__doc__),
                                     parents=[build_parser()], add_help=False, conflict_handler="resolve")
    parser.add_argument("rule", help=f"a registered rule or mutant, from {rule_names()}; with "
                                     "--network, derived or a layer mutant (bpcheck mutants --network)")
    parser.add_argument("--html", type=output_path("--html", HTML),
                        help="write the report as one HTML file here (.html or .htm)")
    parser.add_argument("--markdown", type=output_path("--markdown", MARKDOWN),
                        help="write the report as one Markdown file here (.md or .markdown)")
    parser.add_argument("--epochs", type=count_up_to(MAX_EPOCHS), default=30,
                        help=f"training epochs on iris, or digits with --network (default 30, at most "
                             f"{MAX_EPOCHS})")
    args = parser.parse_args(argv)
    try:
        if not (args.html or args.markdown):
            raise ValueError("give --html PATH or --markdown PATH (or both)")
        rule, problem = _rule_and_problem(args)
    except (ValueError, TypeError) as error:
        console.print(f"[bold red]bpcheck report: error:[/] {escape(str(error))}", soft_wrap=True)
        return EXIT_USAGE
    with progress(console, f"reporting on {rule.name}") as shown:
        say = lambda what: shown.phase(what, 0, None)  # noqa: E731
        parts = (sections(rule, problem, args.epochs, (0.01, 0.1), say) if args.network is None else
                 network_sections(rule, problem, args.seed, args.epochs, (0.03, 0.3), _png, say))
    title = f"bpcheck report: {rule.name} — {rule.summary}"
    for path, render in ((args.html, to_html), (args.markdown, to_markdown)):
        if path:
            with writing():
                Path(path).write_text(render(title, parts), encoding="utf-8")
            console.print(f"wrote {path}")
    return EXIT_AGREES
