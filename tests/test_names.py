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
        "split_targets")


def _top_level_names(path: Path) -> Iterator[str]:
    """The names a module defines at its top level: functions, classes and assignments."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            yield node.name
        elif isinstance(node, ast.Assign):
            yield from (target.id for target in node.targets if isinstance(target, ast.Name))
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


def test_the_public_strategy_of_problems_is_the_mlps():
    import bpcheck
    from bpcheck import strategies

    assert bpcheck.problems is strategies.problems
