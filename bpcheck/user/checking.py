"""``bpcheck.check(rule)``: search random networks for one where your rule is wrong, and say why.

It takes a ``UserRule`` (a whole backward pass or training step) or a ``UserActivation`` or
``UserLoss``, searches with Hypothesis (``bpcheck.core.search``), and returns a ``CheckReport``
(``bpcheck.user.report``): the verdict, how many networks were checked, the smallest network
that shows a failure — in bpcheck's conventions and in yours — the comparison rows on it and,
where the rule differs, the diagnosis (``bpcheck.mlp.diagnose``). The report prints itself as text
and renders in a notebook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bpcheck.core.compare import Row
from bpcheck.core.search import UserCodeError, Verdict, check_examples, timed_out
from bpcheck.core.user_code import DEFAULT_TIME_LIMIT, BadResult, given_shapes, user_frame
from bpcheck.core.user_code import time_limit as limit_calls
from bpcheck.core.verdicts import AGREES, NOT_VERIFIED, RAISED, WRONG
from bpcheck.mlp.memory import check_drawn_mlp_memory
from bpcheck.mlp.problem import Problem
from bpcheck.mlp.search import hunt
from bpcheck.user.declarations import better_declarations
from bpcheck.user.extend import UserActivation, UserLoss, guarded
from bpcheck.user.extend import verify as verify_part
from bpcheck.user.layer import UserLayer
from bpcheck.user.problems import user_problems
from bpcheck.user.report import CheckReport, Entry
from bpcheck.user.rule import UserRule, resample, user_targets
from manual.spec import DTYPES, one_of
from reference import WITNESSES

if TYPE_CHECKING:  # loaded with jax where an activation or loss is checked: a layer's crash is told sooner
    from bpcheck.user.elementwise import Kink, Mismatch


def check(rule: UserRule | UserActivation | UserLoss | UserLayer, examples: int = 200, seed: int = 0,
          dtype: str = "float64", layers: tuple[int, ...] | None = None,
          activations: tuple[str, ...] | None = None, loss: str | None = None,
          time_limit: float | None = DEFAULT_TIME_LIMIT) -> CheckReport:
    """Check ``rule`` on up to ``examples`` random networks, drawn and shrunk by Hypothesis.

    Args:
        rule: a UserRule, UserActivation, UserLoss or UserLayer.
        examples: the most random networks to try (1 to 100,000).
        seed: the same seed draws the same networks.
        dtype: "float64" or "float32", the arrays a UserRule is given (a UserRule only).
        layers: the widths, e.g. ``(4, 3, 2)`` (a UserRule only, as ``--layers``).
        activations: one name per layer (a UserRule only, as ``--activations``).
        loss: a loss's name (a UserRule only, as ``--loss``).
        time_limit: seconds each call of your code may take (None or inf: no limit; in the
            main thread only, ``bpcheck.core.user_code``); past it, it is stopped and the
            verdict is RAISED.

    Returns:
        A CheckReport: ``passed``, ``verdict`` (agrees, WRONG, RAISED, NOT VERIFIED, ...),
        ``message``, and the smallest network it failed on."""
    if not isinstance(rule, UserRule | UserActivation | UserLoss | UserLayer):
        raise TypeError(f"rule={rule!r:.80} must be a UserRule, UserActivation, UserLoss or UserLayer")
    check_examples(examples)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} must be an int >= 0")
    one_of(dtype, DTYPES, "dtype")
    with limit_calls(time_limit):  # validates it
        report = _check(rule, examples, seed, dtype, layers, activations, loss)
    report.kind = REPORT_KINDS[type(rule)]
    return report


#: What ``CheckReport.kind`` says for each kind of user code.
REPORT_KINDS = {UserRule: "rule", UserActivation: "activation", UserLoss: "loss", UserLayer: "layer"}


def _check(rule, examples: int, seed: int, dtype: str, layers, activations, loss) -> CheckReport:
    """The report of ``check``, before its kind is named."""
    if isinstance(rule, UserRule):
        rule = rule.pinned(layers, activations, loss)
        if rule.sizes is not None:  # refused before any work, as the CLI's --layers
            named = "layers" if layers is not None else "sizes"
            check_drawn_mlp_memory(rule.sizes, f"{named}={rule.sizes}")
        return _report(rule, hunt(rule.update_rule(), user_problems(rule, dtype), examples, seed,
                                  keep_errors=True))
    if (layers, activations, loss, dtype) != (None, None, None, "float64"):
        raise ValueError("layers, activations, loss and dtype pin a UserRule's network; "
                         f"{rule.name} is a {type(rule).__name__}")
    if isinstance(rule, UserLayer):
        from bpcheck.user.layer_check import check_layer
        return check_layer(rule, examples, seed)
    return _check_part(rule, examples, seed)


def _check_part(rule: UserActivation | UserLoss, examples: int, seed: int) -> CheckReport:
    """An activation element by element first (its forward, kinks), then inside networks; a
    loss inside networks."""
    from bpcheck.user.elementwise import Reach, grid_findings, kink_conventions, undeclared_kinks

    elements: list[Mismatch] = []
    kinks: list[Kink] = []
    notes: list[str] = []
    user = guarded(rule)
    if isinstance(rule, UserActivation):
        try:
            findings = grid_findings(user)
            elements, notes = findings.mismatches, [*map(str, findings.notes)]
            notes += [] if findings.unjudged is None else [str(findings.unjudged)]
            kinks = kink_conventions(user)
        except UserCodeError as error:
            return CheckReport(rule.name, RAISED, 0, f"{rule.name}: your {error.part} raised "
                               f"{type(error.error).__name__}: {error.error}{user_frame(error.error)}",
                               error=error.error, part=error.part)
        early = _forward_verdict(rule.name, elements)
        early = _kink_verdict(rule.name, kinks) if early is None else early
        if early is not None:
            return early
    reach = Reach(rule.name, rule.kinks) if isinstance(rule, UserActivation) else None
    report = _with_elements(_report(rule, verify_part(rule, examples, seed, reach)), elements)
    report.kinks, report.reached = kinks, "" if reach is None else str(reach)
    report.notes = notes
    jumps = undeclared_kinks(user) if isinstance(rule, UserActivation) else []
    if jumps:
        report.hints = [f"a kink between z = {a:g} and z = {b:g}" for a, b in jumps]
        if not report.passed:
            report.message += f" — {undeclared_kink_advice(report.hints[0])}"
    return report


def undeclared_kink_advice(hint: str) -> str:
    """What to do about one of an activation's ``hints`` (a jump of its torch derivative)."""
    return (f"{hint}? your torch forward's derivative jumps there, where no kink is declared: if "
            "it is one, declare it (kinks=(…,)), and the networks will keep away from it")


def _forward_verdict(name: str, elements: list[Mismatch]) -> CheckReport | None:
    """WRONG when the value is not the torch or jax forward; NOT VERIFIED when the two forwards
    disagree with each other: either way the network search would blame the derivative."""
    forward = [m for m in elements if m.quantity == "value" and m.witness != "jax vs torch"]
    if forward:
        return CheckReport(name, WRONG, 0, f"{name}: WRONG forward — {forward[0]}: your value and "
                           f"your {forward[0].witness} forward must be one function (the witnesses "
                           "differentiate the forwards, finite differences your value)",
                           elements=elements)
    split = [m for m in elements if m.witness == "jax vs torch"]
    if split:
        return CheckReport(name, NOT_VERIFIED, 0, f"{name}: NOT VERIFIED — the witnesses disagree "
                           f"among themselves: {split[0]}", elements=elements)
    return None


def _kink_verdict(name: str, kinks: list[Kink]) -> CheckReport | None:
    """WRONG where the derivative at a kink is not the σ′ declared for it."""
    off = [kink for kink in kinks if not kink.as_declared]
    if not off:
        return None
    return CheckReport(name, WRONG, 0, f"{name}: WRONG at a kink — {off[0]}", kinks=kinks)


def _with_elements(report: CheckReport, elements: list[Mismatch]) -> CheckReport:
    """The network search's report, with the grid's derivative findings: a derivative wrong
    somewhere on the grid is WRONG even where no random network reached it."""
    report.elements = elements
    if elements and report.verdict == WRONG:
        report.message += f"; {elements[0]}"
    elif elements and report.verdict == AGREES:
        report.verdict = WRONG
        report.message = (f"{report.rule}: WRONG derivative — {elements[0]} (the random networks "
                          "did not reach it; the grid of z did)")
    return report


def _report(rule: UserRule | UserActivation | UserLoss, verdict: Verdict) -> CheckReport:
    name, found = rule.name, verdict.examples
    if verdict.raised is not None:
        problem, error = verdict.raised_on, verdict.raised
        yours = _yours(rule, problem)
        if verdict.part == "result":
            said = f"your code returned a wrong result: {error}"
        elif isinstance(error, BadResult):
            said = f"your {verdict.part} returned a wrong result: {error}"
        else:
            who = f"your {verdict.part}" if verdict.part else "checking it"
            said = f"{who} raised {type(error).__name__}: {error}{user_frame(error)}"
        if yours is not None:
            said += f" (it was given {given_shapes(yours)})"
        # another declaration cannot make it quicker, and each try would cost the time limit
        hints = better_declarations(rule, problem) if isinstance(rule, UserRule) and not timed_out(
            error) else []
        return CheckReport(name, RAISED, found, f"{name}: {said}{_hinted(hints)}", problem, yours,
                           error=error, part=verdict.part, discarded=verdict.discarded, hints=hints)
    if verdict.failure is None:
        if found == 0:
            return CheckReport(name, NOT_VERIFIED, 0, f"{name}: NOT VERIFIED — no network was checked: "
                               f"{verdict.unchecked_reason()}", discarded=verdict.discarded)
        skipped = sum(verdict.discarded.values())
        more = f" ({skipped} more drawn and left out: {_reasons(verdict)})" if skipped else ""
        return CheckReport(name, AGREES, found, f"{name}: {found} random networks agree with every "
                           f"witness{more}", discarded=verdict.discarded)
    problem, report = verdict.failure, verdict.report
    rows = [row for row in report.rows if row.differs]
    wrong = sorted({row.parameter for row in rows})
    explanations, entries, hints = [], [], []
    if isinstance(rule, UserRule):
        from bpcheck.mlp.diagnose import diagnose  # torch: this module loads none for a layer's check

        directions, _ = _evaluate(report.rule, problem)
        explanations = diagnose(directions, problem, also=_resampled(rule, report.rule, problem),
                                from_step=report.rule.directions_from_step)
        entries = _worst_entries(rule, problem, rows, directions)
        hints = better_declarations(rule, problem)
    differ = "differs" if len(wrong) == 1 else "differ"
    return CheckReport(name, WRONG, found, f"{name}: WRONG — on the smallest network Hypothesis "
                       f"found, {', '.join(wrong)} {differ} from the witnesses{_hinted(hints)}", problem,
                       _yours(rule, problem), rows, explanations, comparison=report,
                       entries=entries, discarded=verdict.discarded, hints=hints)


def _hinted(hints: list[str]) -> str:
    """What the message adds when another declaration makes the code agree."""
    if not hints:
        return ""
    return (f" — but declared with {' or '.join(hints)} your code agrees with the witnesses (it "
            "differs nowhere on this network and 3 fresh draws of it): check your Conventions")


def _reasons(verdict: Verdict) -> str:
    return "; ".join(f"{count} {reason}" for reason, count in verdict.discarded.most_common())


def _evaluate(rule, problem: Problem):
    return rule.directions_and_step(problem.spec, problem.params, problem.X, problem.Y, problem.lr)


def _resampled(rule: UserRule, update_rule, problem: Problem, count: int = 3) -> list:
    """(directions, problem) on ``count`` fresh draws of the counterexample's network, for the
    diagnosis to confirm its explanations on (draws the rule raises on are left out)."""
    rng, found = np.random.default_rng(0), []
    for _ in range(count):
        other = resample(rule, problem, rng)
        try:
            found.append((_evaluate(update_rule, other)[0], other))
        except Exception:  # the search already reported what it found
            continue
    return found


def _worst_entries(rule: UserRule, problem: Problem, rows: list[Row], directions: dict) -> list[Entry]:
    """For each differing parameter, its worst entry's place in the user's container, the
    user's value there and autodiff's (torch, float64)."""
    p = problem.in_float64()
    exact = WITNESSES["torch"].gradients(p.spec, p.params, p.X, p.Y)
    worst: dict[str, Row] = {}
    for row in rows:
        known = worst.get(row.parameter)
        if row.quantity == "gradient" and (known is None or row.error.max_abs > known.error.max_abs):
            worst[row.parameter] = row
    return [Entry(name, rule.conventions.locate(p.spec, name, row.error.where),
                  float(directions[name][row.error.where]), float(exact[name][row.error.where]),
                  rule.computes != "gradients")
            for name, row in sorted(worst.items())]


def _yours(rule: Any, problem: Problem | None) -> dict[str, Any] | None:
    """The problem as the user's code sees it (params in their container, X, Y)."""
    if problem is None or not isinstance(rule, UserRule):
        return None
    spec = problem.spec
    return {"params": rule.conventions.params_to_user(spec, problem.params), "X": problem.X,
            "Y": user_targets(rule, spec, problem.Y), "lr": problem.lr}
