"""``bpcheck verify MODULE:NAME``: property-check a user's activation or loss."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape

from bpcheck.cli.options import described, natural, positive_int
from bpcheck.cli.render import describe_problem, rule_table
from bpcheck.extend import UserActivation, load_user_rule, verify


def main(argv: list[str], console: Console) -> int:
    """``bpcheck verify MODULE:NAME``: property-check a user rule; 0 if it agrees, 1 if not (it
    differs, its code raised, or no network could be checked), 2 on bad usage."""

    parser = argparse.ArgumentParser(prog="bpcheck verify", description=described(main.__doc__))
    parser.add_argument("target", help="MODULE:NAME of a UserActivation or UserLoss "
                                       "(MODULE may be a .py path)")
    parser.add_argument("--examples", type=positive_int, default=200,
                        help="random networks to try (default 200)")
    parser.add_argument("--seed", type=natural, default=0)
    args = parser.parse_args(argv)
    try:
        rule = load_user_rule(args.target)
    except (ImportError, ValueError, TypeError) as error:
        console.print(f"[bold red]bpcheck verify: error:[/] {escape(str(error))}", soft_wrap=True)
        return 2
    with console.status(f"checking {rule.name} inside random networks against torch, jax and "
                        "finite differences…"):
        verdict = verify(rule, args.examples, args.seed)
    if verdict.raised is not None:
        who = f"your {verdict.part}" if verdict.part else "checking it"
        where = ("" if verdict.raised_on is None else
                 f" on this minimal network:\n{escape(describe_problem(verdict.raised_on))}")
        console.print(f"[bold red]{rule.name}: {who} raised[/] {escape(repr(verdict.raised))}{where}")
        return 1
    if verdict.failure is None and verdict.examples == 0:
        console.print(f"[bold red]{rule.name}: NOT VERIFIED[/] — no network was checked: "
                      f"{escape(verdict.unchecked_reason())}")
        return 1
    if verdict.failure is None:
        console.print(f"[green]{rule.name}: {verdict.examples} random networks agree with every "
                      "witness[/]")
        return 0
    console.print(f"[bold red]{rule.name}: WRONG[/] — the smallest network Hypothesis found that "
                  f"shows it:\n{describe_problem(verdict.failure)}")
    console.print(rule_table(verdict.report, only_disagreements=True))
    differing = sorted({row.parameter for row in verdict.report.rows if row.differs})
    derivative, value = (("derivative", "value") if isinstance(rule, UserActivation)
                         else ("gradient", "per_sample"))
    console.print(f"[bold red]{rule.name}[/]: the derived backward pass with your {derivative} "
                  f"differs from the witnesses on {', '.join(differing)} — your {derivative} is not "
                  f"the derivative of your {value} (the witnesses differentiate your {value}, "
                  "torch and jax forwards)")
    return 1
