"""The package's shape: a family-blind core, the families side by side, the user's side above them,
the commands on top; the engine returns data and never renders; `import bpcheck` stays light."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "bpcheck"
ENGINE = sorted(p for p in PACKAGE.rglob("*.py")
                if p.name != "__main__.py" and p.relative_to(PACKAGE).parts[0] != "cli")  # the command
RENDERING = ("argparse", "rich", "matplotlib")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_the_engine_exists():
    assert len(ENGINE) >= 10, [p.name for p in ENGINE]


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


#: Each layer of the package and what it may import of bpcheck: down only, never sideways
#: between the families, never back up.
LAYERS = {"core": {"core"}, "mlp": {"core", "mlp"}, "layers": {"core", "layers"},
          "user": {"core", "mlp", "layers", "user"}}


@pytest.mark.parametrize("layer", LAYERS)
def test_each_package_imports_only_the_layers_below_it(layer):
    for path in sorted((PACKAGE / layer).glob("*.py")):
        reached = {m.split(".")[1] for m in imported_modules(path) if m.startswith("bpcheck.")}
        above = sorted(reached - LAYERS[layer])
        assert not above, f"{module_name(path)} imports bpcheck.{above}"


def test_the_families_share_their_file_names_and_few_modules_sit_flat():
    """The MLP family and networks of layers each provide their problem, allowances, comparison,
    strategies, diagnosis, mutants and training under the same names."""
    shared = {"problem", "allowances", "compare", "strategies", "diagnose", "mutants", "train"}
    for family in ("mlp", "layers"):
        assert shared <= {p.stem for p in (PACKAGE / family).glob("*.py")}, family
    assert len(list(PACKAGE.glob("*.py"))) <= 12


@pytest.mark.parametrize("path", ENGINE, ids=module_name)
def test_no_engine_module_imports_argparse_rich_or_matplotlib(path):
    rendering = {m for m in imported_modules(path) if m.split(".")[0] in RENDERING}
    assert not rendering, f"{path.name} imports {sorted(rendering)}: that belongs in bpcheck/cli/"


@pytest.mark.parametrize("path", ENGINE, ids=module_name)
def test_no_engine_module_imports_the_command_line(path):
    commands = {m for m in imported_modules(path) if m.startswith("bpcheck.cli")}
    assert not commands, f"{path.name} imports {sorted(commands)}"


def test_import_bpcheck_imports_neither_torch_nor_jax():
    """Nor do the classes a user's module declares its code with (nor Hypothesis): ``bpcheck
    verify`` imports that module before them, so that its usage errors come at once."""
    code = ("import sys, bpcheck; assert bpcheck.__all__; "
            "from bpcheck import UserActivation, UserLayer, UserLoss, UserRule, Conventions; "
            "print(sorted(m for m in ('torch', 'jax', 'optax', 'hypothesis') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True)
    assert run.stdout.strip() == "[]", run.stdout


def test_every_public_name_resolves_to_what_it_names():
    """Even once every submodule is imported (a submodule named like an export would shadow it)."""
    import bpcheck

    for path in ENGINE:
        importlib.import_module(module_name(path))
    for name in bpcheck.__all__:
        value = getattr(bpcheck, name)
        assert value is not None and not isinstance(value, types.ModuleType), name
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        bpcheck.nothing  # noqa: B018


#: The plain model description: manual/spec.py, and what it reads and re-exports.
DESCRIPTION = {"manual.spec", "manual.vocabulary", "manual.stack", "manual.layer_kinds", "manual.stack_text"}
WITNESS_FILES = sorted((ROOT / "reference").glob("*.py"))


@pytest.mark.parametrize("path", WITNESS_FILES, ids=lambda p: p.name)
def test_witnesses_read_of_manual_only_its_model_description(path):
    manual = {m for m in imported_modules(path) if m.split(".")[0] == "manual"}
    assert manual <= {"manual.spec"}, f"reference/{path.name} imports {sorted(manual - {'manual.spec'})}"


def test_the_layer_description_reads_through_the_spec():
    import manual.spec
    import manual.stack

    assert all(getattr(manual.spec, name) is getattr(manual.stack, name)
               for name in manual.spec.LAYER_DESCRIPTION)


@pytest.mark.parametrize("module", sorted(DESCRIPTION))
def test_the_model_description_holds_no_math(module):
    """The description modules import nothing of manual's math either (so neither can a witness)."""
    path = ROOT / (module.replace(".", "/") + ".py")
    manual = {m for m in imported_modules(path) if m.split(".")[0] == "manual"}
    assert manual <= DESCRIPTION, f"{module} imports {sorted(manual - DESCRIPTION)}"
