"""What ``bpcheck.check`` returns: a ``CheckReport`` — the verdict, how many networks were
checked, the smallest network that shows a failure (in bpcheck's conventions and in yours), the
comparison rows on it and, where the rule differs, the diagnosis — with each wrong parameter's
worst ``Entry``. The report prints itself as text and renders in a notebook (``bpcheck.user.notebook``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from bpcheck.core.compare import Row, RuleReport, row_dict
from bpcheck.core.verdicts import AGREES
from bpcheck.layers.problem import StackProblem
from bpcheck.mlp.problem import Problem
from manual.stack import Stack

if TYPE_CHECKING:  # torch and jax load with them; a report is made without
    from bpcheck.mlp.diagnose import Explanation
    from bpcheck.user.elementwise import Kink, Mismatch


@dataclass(frozen=True)
class Entry:
    """A parameter's worst entry: where it is in your container, your value, autodiff's."""

    parameter: str
    location: str
    yours: float  # your gradient there; for a rule that returns a step, (θ − θ′)/η
    exact: float
    from_step: bool = False  # ``yours`` is implied by your step, not returned by your code


@dataclass
class CheckReport:
    """What ``check`` found (module docstring); ``passed`` is the one bit a test asserts."""

    rule: str
    verdict: str  # AGREES, WRONG, RAISED or NOT_VERIFIED
    examples: int  # networks checked
    message: str  # one sentence: what was found
    counterexample: Problem | StackProblem | Stack | None = None  # the smallest network that shows
    # the failure (a layer's Stack: it raised while its values were drawn)
    yours: dict[str, Any] | None = None  # that network's params, X and Y in your conventions
    rows: list[Row] = field(default_factory=list)  # the comparisons on it that differ
    diagnosis: list[Explanation] = field(default_factory=list)
    error: BaseException | None = None  # what your code raised (RAISED)
    part: str | None = None  # which part of your code raised, or "result" for a wrong result
    comparison: RuleReport | None = None  # every comparison on the counterexample (WRONG)
    entries: list[Entry] = field(default_factory=list)  # the worst entry of each wrong parameter
    elements: list[Mismatch] = field(default_factory=list)  # an activation's grid findings
    kinks: list[Kink] = field(default_factory=list)  # σ′ at each declared kink, every convention
    hints: list[str] = field(default_factory=list)  # conventions under which the code agrees
    reached: str = ""  # where an activation's pre-activations were, in the networks and the grid
    discarded: Counter = field(default_factory=Counter)
    #: what is not a verdict: an activation's precision notes, points judged at its scale only
    notes: list[str] = field(default_factory=list)
    kind: str = "rule"  # what was checked: "rule", "activation", "loss" or "layer"
    #: a layer's: each layer alone on the counterexample (bpcheck.layers.diagnose), and where
    #: your torch and jax forwards disagree (WITNESSES DIFFER)
    findings: list = field(default_factory=list)
    witness_rows: list[Row] = field(default_factory=list)
    like: str = ""  # a layer declared like= a known kind: that kind (``bpcheck.user.like``)
    data: str = ""  # that layer's data layout where it is not bpcheck's ("NHWC"), else ""

    @property
    def passed(self) -> bool:
        return self.verdict == AGREES

    def __bool__(self) -> bool:
        return self.passed

    @property
    def backward_disagrees_with_own_forward(self) -> bool:
        """A layer's backward differs from finite differences of its own forward."""
        from bpcheck.user.layer_report import backward_disagrees_with_own_forward
        return backward_disagrees_with_own_forward(self)

    @property
    def forward_differs(self) -> bool:
        """A layer's NumPy forward differs from its torch forward, the layer alone."""
        from bpcheck.user.layer_report import forward_differs
        return forward_differs(self)

    def __str__(self) -> str:
        from bpcheck.user.notebook import as_text
        return as_text(self)

    def _repr_html_(self) -> str:
        from bpcheck.user.notebook import as_html
        return as_html(self)

    def to_dict(self) -> dict:
        """Plain data for ``--json``."""
        p = self.counterexample
        if self.kind == "layer":
            from bpcheck.user.layer_report import network
            return {"rule": self.rule, "kind": self.kind, "verdict": self.verdict, "passed": self.passed,
                    "examples": self.examples, "message": self.message, "network": network(self),
                    "error": None if self.error is None else repr(self.error), "part": self.part,
                    "rows": [row_dict(row) for row in self.rows],  # what differs, as .rows
                    "comparison": [row_dict(row) for row in self.comparison.rows] if self.comparison else [],
                    "witness_rows": [row_dict(row) for row in self.witness_rows],
                    "findings": [asdict(f) for f in self.findings], "discarded": dict(self.discarded)}
        return {
            "rule": self.rule, "kind": self.kind, "verdict": self.verdict, "passed": self.passed,
            "examples": self.examples, "message": self.message,
            "discarded": dict(self.discarded),
            "error": None if self.error is None else repr(self.error),
            "counterexample": None if p is None else {
                "sizes": list(p.spec.sizes), "activations": list(p.spec.activations),
                "loss": p.spec.loss, "reduction": p.spec.reduction, "l2": p.spec.l2,
                "dtype": p.spec.dtype, "lr": p.lr, "params": {k: v.tolist() for k, v in p.params.items()},
                "X": p.X.tolist(), "Y": p.Y.tolist()},
            "elements": [{"quantity": m.quantity, "witness": m.witness, "z": m.z, "yours": m.yours,
                          "theirs": m.theirs, "allowed": m.allowed} for m in self.elements],
            "better_declarations": self.hints, "reached": self.reached, "notes": self.notes,
            "kinks": [{"z": k.z, "yours": k.yours, "declared": k.declared, "torch": k.torch,
                       "jax": k.jax} for k in self.kinks],
            "entries": [{"parameter": e.parameter, "location": e.location, "yours": e.yours,
                         "autodiff": e.exact, "from_step": e.from_step} for e in self.entries],
            "rows": [{"parameter": r.parameter, "quantity": r.quantity, "witness": r.witness,
                      "max_abs_error": r.error.max_abs, "rel_error": r.error.rel,
                      "tolerance": r.tolerance, "verdict": r.verdict} for r in self.rows],
            "diagnosis": [{"parameter": e.parameter, "explained_by": list(e.hypotheses),
                           "factor": e.factor, "factor_named": e.factor_words, "residual": e.residual,
                           "rounding_allows": e.allowed,
                           "as_simply": [{"explained_by": list(hypotheses), "factor": c,
                                          "factor_named": words} for hypotheses, c, words in e.alternatives]}
                          for e in self.diagnosis],
        }
