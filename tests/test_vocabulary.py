"""One record per name: no module special-cases an activation or loss by a literal outside it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from manual import vocabulary

ROOT = Path(__file__).resolve().parent.parent
NAMES = set(vocabulary.ACTIVATIONS) | set(vocabulary.LOSSES)
#: Where names may stand as literals: the records, and the implementations keyed by name (the
#: math of each name in manual/, the seed program's, and each witness's in reference/).
KEYED_BY_NAME = {"manual/vocabulary.py", "manual/activations.py", "manual/losses.py", "manual/seed.py",
                 "reference/torch_ref.py", "reference/jax_ref.py", "reference/numeric.py"}
CHECKED = sorted(path for folder in ("bpcheck", "manual", "reference", "bench")
                 for path in (ROOT / folder).rglob("*.py")
                 if path.relative_to(ROOT).as_posix() not in KEYED_BY_NAME)


def _names_in(node: ast.AST) -> set[str]:
    """Registered names a literal spells: a string, or a tuple, list or set of strings."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value} & NAMES
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return set().union(*(_names_in(element) for element in node.elts))
    return set()


def special_cases(source: str) -> list[tuple[int, str]]:
    """(line, name) wherever a name is compared with, tested for membership in, or keyed by a
    literal: ``loss == "bce"``, ``name in ("relu", "leaky_relu")``, ``{"sigmoid": …}``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            literals = set().union(*(_names_in(operand) for operand in (node.left, *node.comparators)))
        elif isinstance(node, ast.Dict):
            literals = set().union(*(_names_in(key) for key in node.keys if key is not None))
        elif isinstance(node, ast.Set):
            literals = _names_in(node)
        else:
            continue
        found += [(node.lineno, name) for name in sorted(literals)]
    return found


def test_the_check_finds_special_cases():
    source = ('if spec.loss == "bce": pass\nok = out in ("relu", "leaky_relu")\n'
              'KAPPA = {"sigmoid": 1}\nKINKED = {"relu"}\nfine = Spec(loss="half-sse")\n')
    assert special_cases(source) == [(1, "bce"), (2, "leaky_relu"), (2, "relu"), (3, "sigmoid"),
                                     (4, "relu")]


def test_files_are_checked():
    assert len(CHECKED) > 30, CHECKED


@pytest.mark.parametrize("path", CHECKED, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_name_is_special_cased_outside_its_record(path):
    found = special_cases(path.read_text(encoding="utf-8"))
    assert not found, (f"{path.relative_to(ROOT)} special-cases {found}: declare what the name is "
                       "in its record (manual/vocabulary.py) and read the record instead")


@pytest.mark.parametrize("registry", [vocabulary.ACTIVATIONS, vocabulary.LOSSES])
def test_each_record_is_filed_under_its_own_name(registry):
    assert all(record.name == name for name, record in registry.items())
