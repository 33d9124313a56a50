"""The one search behind ``verify``, user layers and the mutation gate, for every family:
Hypothesis draws problems, a judge compares a rule on each, and the first disagreement (or
exception) is shrunk to a minimal problem. Each family's hunt supplies the judge."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from hypothesis import HealthCheck, Phase, given, reject, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import HypothesisException, Unsatisfiable

from bpcheck.core.compare import RuleReport
from bpcheck.core.runtime import MAX_EXAMPLES, bounded_programs, frozen_heap, one_thread
from bpcheck.core.user_code import TimeLimitExceeded, UserCodeError
from reference import SENSITIVITY_WITNESS, WITNESSES

#: A hunt keeps the minimal problem itself (``Verdict``), so it skips Hypothesis's explain
#: phase, which reruns the shrunk failure with each argument varied to annotate a traceback.
EXPLORE_AND_SHRINK = tuple(phase for phase in Phase if phase != Phase.explain)


class _Stopped(BaseException):
    """The search's signal to stop at once, past Hypothesis (which would otherwise shrink):
    user code ran out of time (``bpcheck.core.user_code.TimeLimitExceeded``), and each smaller
    network would cost the time limit again. Its ``__cause__`` is what stopped it."""


def timed_out(error: BaseException) -> bool:
    """Whether ``error`` is a user call stopped at the time limit (wrapped or not)."""
    return isinstance(error.error if isinstance(error, UserCodeError) else error, TimeLimitExceeded)


def check_examples(examples: object, argument: str = "examples") -> int:
    """A count of random networks: an int from 1 to MAX_EXAMPLES."""
    if isinstance(examples, bool) or not isinstance(examples, int) or examples < 1:
        raise ValueError(f"{argument}={examples!r} must be an int >= 1 (random networks to try)")
    if examples > MAX_EXAMPLES:
        raise ValueError(f"{argument}={examples!r} must be at most {MAX_EXAMPLES} (random networks "
                         "to try: some 10–20 ms each, the most about half an hour)")
    return examples


class _Disagreement(Exception):
    """The search's own failure signal: the rule disagrees with a witness. Never raised by the
    rule's code, so that nothing the rule raises can pass for it (or be taken for a pass)."""


@dataclass
class Verdict:
    """The outcome of a search: networks checked, when the first failure came, the smallest
    network the rule disagrees on (``failure``) or its code raised on (``raised_on``)."""

    rule: str
    examples: int  # networks checked (not discarded), those tried while shrinking included
    failure: object = None  # the family's problem (a Problem, a StackProblem)
    report: RuleReport | None = None
    error: BaseException | None = None  # what ended the search
    first_failure_at: int | None = None  # examples run up to and including the first failure
    raised: BaseException | None = None  # what the rule's code raised (unwrapped) ...
    raised_on: object = None  # ... on this minimal problem
    part: str | None = None  # which of the user's callables raised it, if one did
    discarded: Counter = field(default_factory=Counter)  # draws not checked, by reason

    @property
    def passed(self) -> bool:
        """At least one network checked, none disagreeing, nothing raised."""
        return self.failure is None and self.raised is None and self.examples > 0

    def unchecked_reason(self) -> str:
        """Why no network was checked (meaningful when ``examples`` is 0)."""
        drawn = sum(self.discarded.values())
        if not drawn:
            return "no network was drawn"
        reasons = "; ".join(f"{count} {reason}" for reason, count in self.discarded.most_common())
        return f"all {drawn} networks drawn were discarded: {reasons}"

    def disagrees(self, problem, report: RuleReport) -> None:
        """Record a disagreement (each one replaces the last: the last is the shrunk one)."""
        self.first_failure_at = self.first_failure_at or self.examples
        self.failure, self.report = problem, report
        self.raised = self.raised_on = self.part = None

    def raises(self, problem, error: Exception) -> None:
        """Record an exception from the rule's code (a ``UserCodeError`` is unwrapped)."""
        self.first_failure_at = self.first_failure_at or self.examples + 1
        user = isinstance(error, UserCodeError)
        self.raised, self.part = (error.error, error.part) if user else (error, None)
        self.raised_on, self.failure, self.report = problem, None, None


def _leaf(error: BaseException) -> BaseException:
    """The first exception inside (nested) exception groups, unwrapped."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error.error if isinstance(error, UserCodeError) else error


#: Told after each example a search judges (``watching``): (checked, left out) so far.
_watcher: ContextVar[Callable[[int, int], None] | None] = ContextVar("watcher", default=None)


@contextmanager
def watching(tell: Callable[[int, int], None]) -> Iterator[None]:
    """``tell(checked, left_out)`` after each example any search of the ``with`` block judges:
    the command line's progress, with no argument passed through every kind's check."""
    token = _watcher.set(tell)
    try:
        yield
    finally:
        _watcher.reset(token)


def search(name: str, strategy, judge: Callable, max_examples: int, seed: int = 0,
           keep_errors: bool = False, observe: Callable | None = None, witnesses: bool = True) -> Verdict:
    """The search behind ``hunt`` for any kind of problem: Hypothesis draws from ``strategy``,
    ``judge(problem, discard)`` returns the comparison's ``RuleReport`` (or calls
    ``discard(reason)``: the draw is not checked, counted by reason), and the first report
    that does not agree is shrunk; ``keep_errors`` and ``observe`` as for ``hunt``; without
    ``witnesses``, torch is not loaded (a judge that runs the rule's NumPy code alone)."""
    check_examples(max_examples)
    verdict = Verdict(name, 0)
    watcher = _watcher.get()

    def tell() -> None:
        if watcher is not None:
            watcher(verdict.examples, sum(verdict.discarded.values()))

    def discard(reason: str) -> None:
        verdict.discarded[reason] += 1
        tell()
        reject()

    def check_one(problem) -> None:
        bounded_programs()  # jax's compiled programs, one per structure, within the process's mappings
        report = judge(problem, discard)
        verdict.examples += 1
        tell()
        if observe is not None:
            observe(problem)
        if not report.agrees:
            verdict.disagrees(problem, report)
            raise _Disagreement(f"{name} disagrees")

    @hypothesis_seed(seed)
    @settings(max_examples=max_examples, deadline=None, database=None, print_blob=False,
              report_multiple_bugs=False, phases=EXPLORE_AND_SHRINK,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(problem=strategy)
    def check(problem) -> None:
        try:
            check_one(problem)
        except (_Disagreement, HypothesisException):
            raise
        except Exception as error:
            if keep_errors:
                verdict.raises(problem, error)
            if timed_out(error):
                raise _Stopped from error
            raise

    if witnesses:
        WITNESSES[SENSITIVITY_WITNESS].module  # noqa: B018 — torch loads now, pinned and frozen below
    try:
        with one_thread(), frozen_heap():
            check()
    except _Stopped as stop:  # the verdict holds it (keep_errors), or it propagates
        verdict.error = stop.__cause__
        if not keep_errors:
            raise stop.__cause__ from None
    except Unsatisfiable as error:  # every draw discarded: ``examples`` stays 0
        verdict.error = error
    except Exception as error:
        verdict.error = error
        if not (keep_errors or isinstance(error, _Disagreement)):
            raise
        if verdict.failure is None and verdict.raised is None:  # e.g. a flaky failure
            verdict.raised = _leaf(error)
    return verdict
