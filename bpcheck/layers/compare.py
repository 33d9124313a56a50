"""Compare a rule for a network of layers with the witnesses: torch, jax, finite differences of
torch's forward, and finite differences of the rule's *own* forward — a backward that
disagrees with its own forward is a finding of its own, told apart from a wrong forward.

Rows, verdicts and reports are those of the MLP family (``bpcheck.mlp.compare``); ``x`` (the
gradient of the input) is judged beside the parameters, and batch norm's running statistics
after the step beside the updates.
"""

from __future__ import annotations

import importlib
from collections import ChainMap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from bpcheck.core.compare import (
    Row,
    RuleReport,
    Truth,
    check_comparison,
    check_type,
    gradient_row,
    row_verdict,
    update_row,
    with_reason,
)
from bpcheck.core.metrics import discrepancy
from bpcheck.core.projected import projected_row
from bpcheck.core.verdicts import INCONCLUSIVE
from bpcheck.core.witness_rows import compare_witnesses
from bpcheck.layers.allowances import (
    conditioning_per_gradient,
    lost_in_float32,
    measure,
    one_key,
)
from bpcheck.layers.consistency import (
    OWN_FORWARD,
    UNTRUSTED,
    consistency_row,
    differences_hold,
    own_forward_truth,
    projected_consistency_row,
    reusing_forward,
)
from bpcheck.layers.differences import _copies, differences, placed, placing_rows, projected
from bpcheck.layers.problem import StackProblem
from manual import stack_network
from manual.spec import Params
from manual.stack import LAYER_KINDS, param_shapes, walk
from reference.projection import DIRECTIONS

#: ``progress(what, done, total)``: the phase, and how far it is (total None: unknown).
Progress = Callable[[str, int, int | None], None]


def witness(name: str):
    """``reference.torch_stack`` or ``reference.jax_stack``, imported on first use."""
    return importlib.import_module(f"reference.{name}_stack")


def swapped(pairs: Mapping) -> ChainMap:
    """The derived layers' pairs with ``pairs`` (kind → (forward, backward)) in their place: a
    view of ``manual.stack_network.PAIRS`` that follows it (``pairs.maps[0]`` holds the swaps)."""
    return ChainMap(dict(pairs), stack_network.PAIRS)


@dataclass(frozen=True)
class StackRule:
    """A rule for networks of layers: the layers' (forward, backward) pairs it runs."""

    name: str
    summary: str
    claims_correct: bool = True
    #: kind → (forward, backward): its swaps (``swapped``) over ``manual.stack_network.PAIRS`` as
    #: that table is at each lookup, so a kind registered later (``bpcheck.user.registry``) is found
    pairs: Mapping = field(default_factory=lambda: swapped({}))
    cause: str = ""  # for a known-wrong rule: what is wrong, in words

    def evaluate(self, problem: StackProblem) -> tuple[Params, Params, Params]:
        """(∂L/∂θ and ∂L/∂x, θ after one SGD step, running statistics after it)."""
        return stack_network.sgd_step(problem.stack, problem.params, problem.buffers, problem.x,
                                      problem.y, problem.lr, problem.masks, self.pairs)

    def own_loss(self, problem: StackProblem):
        """L as a function of {parameters…, "x"}, by the rule's own forward pass."""
        stack, y, masks, tokens = problem.stack, problem.y, problem.masks, problem.x
        forward = reusing_forward(stack, self.pairs, masks)

        def value(arrays: Params) -> float:
            out = forward(arrays, tokens if stack.tokens else arrays["x"])
            return stack_network.loss_value(stack, out, y, masks)
        return value


DERIVED = StackRule("derived", "the hand-derived layers of manual.layers")


@dataclass(frozen=True)
class StackTruth(Truth):
    """``Truth`` plus batch norm's running statistics after the step, per witness."""

    running: dict[str, Params] = field(default_factory=dict)
    running_allowance: Params = field(default_factory=dict)


def behind_user_layers(stack) -> list[str]:
    """The gradients whose backward path runs through a user's layer: its own parameters, those
    of the layers before it (in the order ``walk`` visits them) and x."""
    order = list(walk(stack.layers))
    users = [i for i, layer in enumerate(order)
             if (kind := LAYER_KINDS.get(layer.kind)) is not None and kind.output_shape is not None]
    if not users:
        return []
    before = {layer.name for layer in order[:users[-1] + 1]}
    names = [name for name in param_shapes(stack) if name.partition(".")[0] in before]
    return names + ([] if stack.tokens else ["x"])


def rounding_zero_reason(truth: Params, witness_allowance: Params) -> str:
    """The parameters (or x) whose gradient is zero up to float64 rounding but not exactly zero,
    which no comparison can settle ("" if none): a bias just before batch norm, say. (An exact
    zero is compared exactly.)"""
    zeros = [name for name, g in truth.items() if np.any(g) and np.all(np.abs(g) <= witness_allowance[name])]
    if not zeros:
        return ""
    return (f"the exact gradient of {', '.join(zeros)} is zero up to rounding, so rounding is all any "
            "rule shows there (a shift that a normalisation right after it removes — a bias before "
            "batch norm: leave it out with conv2d:…,nobias — or a normalisation over 2 values, where "
            "x̂ = ±1 whatever x is)")


def ask_stack_witnesses(problem: StackProblem, finite_differences: bool | str = True,
                        fd_sample: int | None = None, progress: Progress | None = None) -> StackTruth:
    """Every witness's float64 gradients and SGD step, finite differences of torch's forward
    (True: by projection, ``projected``, and entry by entry where torch parts from them,
    ``placed``; also on ``fd_sample`` random entries if given; ``"all"``: on every entry
    instead), and the allowances (``bpcheck.layers.allowances``); ``progress(what, done,
    total)`` names each phase and counts finite differences' entries."""
    check_type("problem", problem, StackProblem, " (for a Problem, an MLP: ask_witnesses)")
    say = progress or (lambda what, done, total: None)
    p, torch_w, jax_w = problem.in_float64(), witness("torch"), witness("jax")
    args = (p.stack, p.params, p.buffers, p.x, p.y, p.lr, p.masks)
    grads, steps, running = {}, {}, {}
    # jax computes while torch does (its dispatch returns at once): waited for before the
    # allowances, which read it (no answer depends on the order)
    say("torch's and jax's gradients and step", 0, None)
    started = jax_w.started_gradients_and_sgd_step(*args)
    grads["torch"], steps["torch"], running["torch"] = torch_w.gradients_and_sgd_step(*args)
    grads["jax"] = steps["jax"] = running["jax"] = None  # its place in the rows' order, filled below
    errors, projections = {}, {}
    if finite_differences not in (True, False, "all"):
        raise ValueError(f"finite_differences={finite_differences!r} must be True, False or 'all'")
    stack, y, masks, x = p.stack, p.y, p.masks, p.x

    def torch_loss(values: Params) -> np.ndarray:
        return torch_w.losses(stack, values, y, masks, x)

    if finite_differences is True:
        say("finite differences (projections)", 0, None)
        # DIRECTIONS where torch batches its copies (vmap), each array's step chosen from
        # torch's gradient; one where it runs them one at a time, and a step grown only where
        # needed, in a second call
        single = torch_w.one_at_a_time(stack)
        projections["numeric"] = projected(torch_loss, p, True, 1 if single else DIRECTIONS, not single,
                                           expected=None if single else grads["torch"])
    if finite_differences == "all" or (finite_differences and fd_sample is not None):
        grads["numeric"], errors["numeric"] = torch_differences(
            p, None if finite_differences == "all" else fd_sample,
            progress=lambda done, total: say("finite differences (entries)", done, total))
    say("the rounding allowances", 0, None)
    grads["jax"], steps["jax"], running["jax"] = started()
    same = None
    if problem.stack.dtype != "float64":  # a correct float32 implementation's answer
        same = torch_w.gradients(*problem.arrays(), dtype=np.float32) | torch_w.running_after(
            problem.stack, problem.params, problem.buffers, problem.x, problem.masks, np.float32)
    opaque = None  # torch's float32 answer, where a user's layer hides its insides (the allowances)
    behind = behind_user_layers(p.stack)
    if behind:
        answer = same if same is not None else torch_w.gradients(*problem.arrays(), dtype=np.float32)
        opaque = {name: answer[name] for name in behind}
    kappa, saturated, paths = conditioning_per_gradient(problem, torch_w)
    rule, witness_allowance, floor = measure(problem, torch_w, grads["torch"] | running["torch"],
                                             [grads["jax"] | running["jax"]], same, kappa, opaque, paths)
    unreachable, why = one_key(p.stack)
    for name in unreachable:  # exact zeros there are no evidence; anything else is still judged
        rule[name], witness_allowance[name] = (np.where(grads["torch"][name] == 0, np.inf, allowed[name])
                                               for allowed in (rule, witness_allowance))
    flows_back = any(np.any(g) for g in grads["torch"].values())
    lost = lost_in_float32(grads["torch"], opaque)
    ill = (f"your layer is too ill-conditioned here to judge {', '.join(lost)} in places: torch "
           "computing it in float32 loses three digits or more there (a saturated tanh or sigmoid "
           "inside it?), so no bound on float64 rounding is known" if lost else "")
    rounding = rounding_zero_reason(grads["torch"], witness_allowance) if flows_back else ""
    reason = (saturated or why or rounding or ill) if flows_back else (
        "nothing flows back: every gradient is exactly 0 (some layer passes nothing back: units "
        "all dead, or a dropout mask that drops everything)")
    truth = StackTruth(grads, steps, errors, rule, witness_allowance, floor, reason,
                       flows_back, running, {name: rule[name] for name in running["torch"]},
                       problem=problem.fingerprint(), projections=projections)
    return placed(truth, p, torch_loss) if projections and fd_sample is None else truth


def torch_differences(p: StackProblem, sample: int | None = None, progress=None) -> tuple[Params, Params]:
    """Finite differences of torch's forward on the float64 problem ``p``, every entry or
    ``sample`` of them (``bpcheck.layers.differences``): estimates and their errors."""
    torch_w = witness("torch")
    return differences(lambda values: torch_w.losses(p.stack, values, p.y, p.masks, p.x), p, sample,
                       _copies(p), progress=progress)


def _running_row(name: str, truth: StackTruth, witness_name: str, buffer: str, value: np.ndarray) -> Row:
    reference = truth.running[witness_name][buffer]
    allowed = truth.running_allowance[buffer]
    verdict, tolerance = row_verdict(value, reference, allowed, truth.floor)
    return Row(name, "running", buffer, reference.shape, witness_name,
               discrepancy(np.asarray(value, np.float64), reference), tolerance, verdict, reference.size)


def compare_stack_rule(rule: StackRule, problem: StackProblem, truth: StackTruth,
                       own_forward: bool = True) -> RuleReport:
    """Rows for the rule's gradients (every witness; and its own forward's finite differences —
    along the truth's kind of directions where it has projections, else on OWN_FORWARD_ENTRIES
    of the entries torch's forward was differenced on — unless ``own_forward`` is off), its SGD
    step and its running statistics."""
    check_comparison(rule, StackRule, problem, StackProblem, truth, StackTruth)
    grads, new, running = rule.evaluate(problem)
    report = RuleReport(rule, saturation=truth.saturation)
    by_projection = own_forward and "numeric" in truth.projections
    by_entry = own_forward and "numeric" in truth.errors and not by_projection
    judged, p64 = truth, problem.in_float64()
    own64 = (grads if p64 is problem else rule.evaluate(p64)[0]) if by_entry or by_projection else {}
    if by_entry or by_projection:
        judged = own_forward_truth(rule.own_loss(p64), truth, p64, by_entry)
    hold = {parameter: differences_hold(truth, parameter) for parameter in grads}
    for parameter in grads:
        for witness_name in truth.gradients:
            row = gradient_row(rule.name, truth, witness_name, parameter, grads[parameter], truth.allowance)
            if witness_name in truth.errors and not row.checked and truth.projections:
                continue  # differenced entry by entry elsewhere only (``placed``)
            if witness_name in truth.errors and not (hold[parameter] and row.checked):
                row = replace(row, verdict=INCONCLUSIVE)  # untrusted differences, or none sampled here
            report.rows.append(row)
        for witness_name in truth.projections:
            row = projected_row(rule.name, truth, witness_name, parameter, grads[parameter], truth.allowance)
            report.rows.append(row if hold[parameter] else replace(row, verdict=INCONCLUSIVE,
                                                                   reason=UNTRUSTED))
        if by_entry:
            report.rows.append(consistency_row(rule.name, judged, parameter, own64[parameter],
                                               hold[parameter]))
        if by_projection:
            report.rows.append(projected_consistency_row(projected_row(
                rule.name, judged, OWN_FORWARD, parameter, own64[parameter], judged.witness_allowance),
                hold[parameter]))
        if parameter in problem.params:
            for witness_name in truth.steps:
                report.rows.append(update_row(rule.name, problem, truth, witness_name, parameter,
                                               new[parameter], truth.allowance, problem.stack.dtype))
    for buffer, value in running.items():
        for witness_name in truth.running:
            report.rows.append(_running_row(rule.name, truth, witness_name, buffer, value))
    report.rows.extend(placing_rows(rule.name, problem, truth, report.rows, grads, truth.allowance,
                                    lambda v: witness("torch").losses(p64.stack, v, p64.y, p64.masks, p64.x)))
    return with_reason(report, truth)


def compare_stack(problem: StackProblem, rules: list[StackRule] | None = None,
                  finite_differences: bool = True, fd_sample: int | None = None,
                  progress: Progress | None = None) -> tuple[list[RuleReport], list[Row], StackTruth]:
    """Ask the witnesses once (finite differences on ``fd_sample`` random entries if given),
    then compare each rule (default: the derived one), its own forward on the same entries;
    ``progress(what, done, total)`` as the work goes (``ask_stack_witnesses``, then the rules)."""
    if not isinstance(problem, StackProblem):
        raise TypeError(f"problem={problem!r:.80} is a {type(problem).__name__}; expected a StackProblem")
    if rules is not None and not (isinstance(rules, list | tuple)
                                  and all(isinstance(rule, StackRule) for rule in rules)):
        raise TypeError(f"rules={rules!r:.80} must be a list of StackRule (e.g. [DERIVED])")
    truth = ask_stack_witnesses(problem, finite_differences, fd_sample, progress)
    reports = []
    for done, rule in enumerate(rules := rules or [DERIVED]):
        if progress is not None:
            progress(f"comparing the rules ({rule.name})", done, len(rules))
        reports.append(compare_stack_rule(rule, problem, truth))
    return reports, compare_witnesses(problem, truth), truth

