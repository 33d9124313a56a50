"""Each name means one thing, defined once: names that two modules of the engine defined with
different meanings (a kink margin absolute in one, relative in the other; the MLP's strategy of
problems and the layers'), or re-aliased in every module that used them (``Params``)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bpcheck", "manual", "reference")
#: the names once defined twice, and the names they became
ONCE = ("KINK_MARGIN", "KINK_MARGIN_ABSOLUTE", "KINK_MARGIN_RELATIVE", "Params", "problems",
        "stack_problems", "away_from_kinks", "away_from_kinks_and_ties", "zero_reason",
        "no_flow_reason", "rounding_zero_reason", "train_curve", "train_data_curve", "targets",
        "split_targets", "AGREES", "DIFFERS", "WRONG", "RAISED", "WITNESSES_DIFFER", "INCONCLUSIVE",
        "NOT_VERIFIED", "PASSED", "UNCHECKED", "rounding_steps", "mlp_rounding_steps",
        "stack_rounding_steps", "underflow_floor", "conditioning", "worst_conditioning",
        "conditioning_per_gradient", "saturated_paths", "saturated_paths_bound", "saturated_paths_traced",
        "MAX_BATCH", "MAX_MLP_BATCH", "MAX_STACK_BATCH", "Array", "EXIT_AGREES", "EXIT_WRONG", "EXIT_USAGE",
        "EXIT_INCONCLUSIVE", "EXIT_INTERRUPTED", "distinct", "repeated")


def _top_level_names(path: Path) -> Iterator[str]:
    """The names a module defines at its top level: functions, classes and assignments."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            yield node.name
        elif isinstance(node, ast.Assign):  # ``A = …`` and ``A, B = …``
            targets = [t for target in node.targets
                       for t in (target.elts if isinstance(target, ast.Tuple) else [target])]
            yield from (target.id for target in targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            yield node.target.id


def test_each_name_is_defined_by_one_module_at_most():
    where: dict[str, list[str]] = {name: [] for name in ONCE}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in _top_level_names(path):
                if name in where:
                    where[name].append(str(path.relative_to(ROOT)))
    assert {name: paths for name, paths in where.items() if len(paths) > 1} == {}
    assert where["Params"] == ["manual/spec.py"]
    assert where["NOT_VERIFIED"] == where["WITNESSES_DIFFER"] == ["bpcheck/core/verdicts.py"]
    assert where["PASSED"] == where["UNCHECKED"] == []  # AGREES and NOT_VERIFIED for every kind
    # the formulas both families share, once, over plain numbers; what differs, named apart
    assert where["rounding_steps"] == where["underflow_floor"] == ["bpcheck/core/tolerances.py"]
    assert where["conditioning"] == where["saturated_paths"] == []
    assert where["Array"] == ["manual/vocabulary.py"] and where["MAX_BATCH"] == []
    assert where["EXIT_INCONCLUSIVE"] == ["bpcheck/cli/exits.py"]


def _top_level_strings(path: Path) -> Iterator[str]:
    """The string constants a module's top-level assignments bind (``A, B = "a", "b"`` too)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign):
            values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            yield from (v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str))


def test_the_verdict_words_are_written_by_one_module():
    """A rule's, an activation's, a loss's and a layer's verdicts are one vocabulary: no other
    module binds a verdict word of its own (a layer's unverified check once read "UNCHECKED")."""
    from bpcheck.core import verdicts
    words = {verdicts.AGREES, verdicts.DIFFERS, verdicts.WRONG, verdicts.RAISED,
             verdicts.WITNESSES_DIFFER, verdicts.INCONCLUSIVE, verdicts.NOT_VERIFIED, "UNCHECKED"}
    elsewhere = {str(path.relative_to(ROOT)): sorted(words & set(_top_level_strings(path)))
                 for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
                 if path.name != "verdicts.py"}
    assert {path: found for path, found in elsewhere.items() if found} == {}


def test_an_unverified_layer_says_not_verified_and_exits_three():
    from collections import Counter

    from bpcheck.cli.verify import exit_code
    from bpcheck.user.layer_report import layer_message
    from bpcheck.user.report import CheckReport

    report = CheckReport("flat", "NOT VERIFIED", 0, "", discarded=Counter({"saturated": 3}), kind="layer")
    assert layer_message(report) == "flat: NOT VERIFIED — no network could be checked (3 saturated)"
    assert report.to_dict()["verdict"] == "NOT VERIFIED" and exit_code(report.verdict) == 3


def test_the_public_strategy_of_problems_is_the_mlps():
    import bpcheck
    from bpcheck.mlp import strategies
    assert bpcheck.problems is strategies.problems
