"""``bpcheck verify MODULE:NAME``: property-check your own backprop, activation or loss."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from bpcheck.cli.exits import EPILOG, EXIT_AGREES, EXIT_INCONCLUSIVE, EXIT_USAGE, EXIT_WRONG
from bpcheck.cli.options import described
from bpcheck.cli.progress import progress
from bpcheck.cli.render import describe_problem, rule_table
from bpcheck.cli.target import locate
from bpcheck.cli.validators import count_up_to, int_list, name_list, natural
from bpcheck.core.runtime import MAX_EXAMPLES
from bpcheck.core.user_code import DEFAULT_TIME_LIMIT, SHORTEST_TIME_LIMIT, check_time_limit
from bpcheck.mlp.memory import check_drawn_mlp_memory
from bpcheck.user.notebook import as_text
from manual.spec import DTYPES, LOSSES

if TYPE_CHECKING:
    from bpcheck.user.report import CheckReport

#: Options that pin a UserRule's network (``check`` takes keywords of the same names).
PINS = ("layers", "activations", "loss", "dtype")


def main(argv: list[str], console: Console) -> int:
    """``bpcheck verify MODULE:NAME``: property-check a UserRule (your whole backward pass or
    training step), UserActivation, UserLoss or UserLayer (a layer's forward/backward pair)
    inside random networks against torch, jax and finite differences; 0 if it agrees, 1 if not
    (it differs, its code raised or returned a wrong result), 2 on bad usage, 3 if it could not
    be verified (no network could be checked)."""

    parser = argparse.ArgumentParser(prog="bpcheck verify", description=described(main.__doc__),
                                     epilog=EPILOG)
    parser.add_argument("target", help="MODULE:NAME of a UserRule, UserActivation, UserLoss or "
                                       "UserLayer (MODULE may be a .py path)")
    parser.add_argument("--examples", type=count_up_to(MAX_EXAMPLES), default=200,
                        help=f"random networks to try (default 200, at most {MAX_EXAMPLES})")
    parser.add_argument("--seed", type=natural, default=0, help="the search's seed (default 0)")
    parser.add_argument("--layers", type=int_list, metavar="F,H,…,C",
                        help="pin a UserRule's layer widths (default: drawn)")
    parser.add_argument("--activations", type=name_list, metavar="A,…",
                        help="pin a UserRule's activations: one per layer, or HIDDEN,OUTPUT")
    parser.add_argument("--loss", choices=list(LOSSES), help="pin a UserRule's loss")
    parser.add_argument("--dtype", choices=DTYPES, help="the dtype a UserRule is given (default float64)")
    parser.add_argument("--time-limit", type=_seconds, default=DEFAULT_TIME_LIMIT, metavar="SECONDS",
                        help="how long one call of your code may take before it is stopped and the "
                             f"verdict is RAISED (default {DEFAULT_TIME_LIMIT:g}; inf for no limit)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    pins = {option: getattr(args, option) for option in PINS if getattr(args, option) is not None}
    try:  # what can be told without importing, then your module, before torch and jax load
        kind = locate(args.target)
        if pins and kind not in (None, "UserRule"):  # said before your module and torch load
            raise ValueError(f"{_options(pins)}: pins a UserRule's network; "
                             f"{args.target.rpartition(':')[2]} is a {kind}")
        if "layers" in pins:
            check_drawn_mlp_memory(pins["layers"], "--layers")
        from bpcheck.user.extend import load_user_rule  # Hypothesis loads; torch and jax do not
        from bpcheck.user.layer import UserLayer
        from bpcheck.user.rule import UserRule

        rule = load_user_rule(args.target)
        if pins and not isinstance(rule, UserRule):
            raise ValueError(f"{_options(pins)}: pins a UserRule's network; {rule.name} is a "
                             f"{type(rule).__name__}")
        if pins:
            rule.pinned(pins.get("layers"), pins.get("activations"), pins.get("loss"))
    except (ImportError, ValueError, TypeError) as error:
        return _usage_error(error, console)
    from bpcheck.user.checking import check  # torch and jax load where the check needs them
    against = ("finite differences of its own forward" if isinstance(rule, UserLayer)
               and rule.torch is None and rule.like is None else "torch, jax and finite differences")
    from bpcheck.core.search import watching

    shown_on = Console(stderr=True) if args.json else console  # stdout holds the JSON alone
    with progress(shown_on, f"checking {rule.name} inside random networks against {against}",
                  args.examples) as shown:
        def tell(checked: int, left_out: int) -> None:
            shown.update(completed=min(checked, args.examples),
                         description=f"checking {rule.name} against {against}"
                                     + (f" ({left_out} left out)" if left_out else ""))
        with watching(tell):
            report = check(rule, args.examples, args.seed, **pins, time_limit=args.time_limit)
    return _render(rule, report, args.json, console)


def _render(rule, report: CheckReport, as_json: bool, console: Console) -> int:
    """Print ``report`` (as JSON, or as text for its kind) and return its exit code."""
    from bpcheck.user.rule import UserRule

    if as_json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    elif report.kind == "layer":
        style = "green" if report.passed else "bold red"
        head, _, rest = str(report).partition("\n")
        console.print(f"[{style}]{escape(head)}[/]", soft_wrap=True)
        if rest:
            console.print(escape(rest), soft_wrap=True, highlight=False)
    elif isinstance(rule, UserRule):
        _render_rule(report, console)
    else:
        _render_part(rule, report, console)
        for kink in report.kinks:
            if str(kink) not in report.message:  # a kink verdict says it already
                console.print(f"  {escape(str(kink))}", soft_wrap=True)
        if report.reached:
            console.print(f"  {escape(report.reached)}", soft_wrap=True)
        for note in report.notes:
            console.print(f"  {escape(note)}", soft_wrap=True)
    return exit_code(report.verdict)


def exit_code(verdict: str) -> int:
    """A check's verdict (``bpcheck.core.verdicts``, every kind) as the exit code: agrees 0;
    NOT VERIFIED, inconclusive 3; WRONG, DIFFERS, RAISED, WITNESSES DIFFER 1."""
    from bpcheck.core.verdicts import AGREES, FAILED, UNSETTLED

    if verdict == AGREES:
        return EXIT_AGREES
    if verdict in UNSETTLED:
        return EXIT_INCONCLUSIVE
    if verdict in FAILED:
        return EXIT_WRONG
    raise ValueError(f"verdict={verdict!r} is not a verdict of bpcheck.core.verdicts")


def _options(pins: dict) -> str:
    """'--layers, --dtype': the pinning options given, in the order --help lists them."""
    return ", ".join(f"--{option}" for option in PINS if option in pins)


def _usage_error(error: Exception, console: Console) -> int:
    console.print(f"[bold red]bpcheck verify: error:[/] {escape(str(error))}", soft_wrap=True)
    return EXIT_USAGE


def _seconds(text: str) -> float | None:
    """--time-limit: a number of seconds, at least SHORTEST_TIME_LIMIT, or inf (None: no limit)."""
    try:
        return check_time_limit(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= {SHORTEST_TIME_LIMIT:g}, or "
                                         f"inf for no limit, got {text!r}") from None


def _render_rule(report: CheckReport, console: Console) -> None:
    style = "green" if report.passed else "bold red"
    text = as_text(report)
    head, _, rest = text.partition("\n")
    console.print(f"[{style}]{escape(head)}[/]", soft_wrap=True)
    if rest:
        console.print(escape(rest), soft_wrap=True, highlight=False)


def _render_part(rule, report: CheckReport, console: Console) -> None:
    """An activation's or loss's report: as ``bpcheck verify`` has always printed it."""
    from bpcheck.core.verdicts import NOT_VERIFIED, RAISED
    from bpcheck.user.checking import undeclared_kink_advice
    from bpcheck.user.extend import UserActivation

    name, message_printed = rule.name, False
    if report.verdict == RAISED and report.counterexample is None:  # on the grid of z, before any network
        console.print(f"[bold red]{escape(report.message)}[/]", soft_wrap=True)
    elif report.verdict == RAISED:
        console.print(f"[bold red]{name}: your {report.part or 'code'} raised[/] {escape(repr(report.error))}"
                      f" on this minimal network:\n{escape(describe_problem(report.counterexample))}")
    elif report.verdict == NOT_VERIFIED or report.counterexample is None:
        style = "green" if report.passed else "bold red"
        console.print(f"[{style}]{escape(report.message)}[/]", soft_wrap=True)
        message_printed = True
    else:
        console.print(f"[bold red]{name}: WRONG[/] — the smallest network Hypothesis found that "
                      f"shows it:\n{describe_problem(report.counterexample)}")
        console.print(rule_table(report.comparison, only_disagreements=True))
        differing = sorted({row.parameter for row in report.rows})
        derivative, value = (("derivative", "value") if isinstance(rule, UserActivation)
                             else ("gradient", "per_sample"))
        console.print(f"[bold red]{name}[/]: the derived backward pass with your {derivative} "
                      f"differs from the witnesses on {', '.join(differing)} — your {derivative} is "
                      f"not the derivative of your {value} (the witnesses differentiate your "
                      f"{value}, torch and jax forwards)")
        for element in report.elements:
            console.print(f"  {escape(str(element))}", soft_wrap=True)
    for hint in report.hints:  # an activation's: where its torch derivative jumps, undeclared
        advice = undeclared_kink_advice(hint)
        if not (message_printed and advice in report.message):  # said already
            console.print(f"  {escape(advice)}", soft_wrap=True)
