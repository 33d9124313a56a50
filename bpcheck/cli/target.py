"""``bpcheck verify``'s MODULE:NAME, located without running anything: the file is found and
parsed, and NAME looked for among the names it binds, before torch and jax load (they take
seconds), so a typo is a usage error at once. What cannot be told from the source (NAME made
by ``from m import *``, ``globals()``, ``exec``, a module ``__getattr__``…) is left to the import.
"""

from __future__ import annotations

import ast
import sys
from importlib.machinery import PathFinder
from pathlib import Path

#: What verify checks: the classes a target may be made by.
KINDS = ("UserRule", "UserActivation", "UserLoss", "UserLayer")
#: Names whose use may bind module attributes the source does not show.
DYNAMIC = {"globals", "vars", "exec", "eval", "setattr", "__getattr__", "__dict__", "__import__",
           "import_module"}


def split_target(target: str) -> tuple[str, str]:
    """``"MODULE:NAME"`` → (MODULE, NAME); ValueError unless both are there."""
    module_name, colon, attribute = target.rpartition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"expected MODULE:NAME (e.g. my_rules:swish), got {target!r}")
    return module_name, attribute


def source_file(module_name: str) -> Path | None:
    """The .py file MODULE names (a path, or a dotted name searched on the current directory
    and sys.path as the import would); None where only importing can tell (a module loaded
    already, or found by an import hook). ImportError where it certainly does not exist."""
    path = Path(module_name)
    if path.suffix == ".py":
        if not path.is_file():
            raise ImportError(f"could not import {module_name}: no such file")
        return path
    parts, search = module_name.split("."), [str(Path.cwd()), *sys.path]
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        if name in sys.modules:
            return None
        spec = PathFinder.find_spec(name, search)
        if spec is None:
            if depth == 1 and any(hasattr(finder, "find_spec") and finder is not PathFinder
                                  and _finds(finder, name) for finder in sys.meta_path):
                return None  # an editable install's hook, say
            raise ImportError(f"could not import {module_name}: ModuleNotFoundError: No module "
                              f"named {name!r}")
        search = spec.submodule_search_locations
        if search is None and depth < len(parts):
            return None  # a module, not a package: the import will say what it says
    origin = spec.origin
    return Path(origin) if origin and origin.endswith(".py") else None


def _finds(finder, name: str) -> bool:
    try:
        return finder.find_spec(name, None) is not None
    except Exception:
        return True


def bound_names(tree: ast.Module) -> set[str] | None:
    """Every name the module's code binds anywhere (assignment, def, class, import, for,
    with, except, global, match); None if it may bind names its source does not show."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names):
            return None
        if any(getattr(node, field, None) in DYNAMIC for field in ("id", "attr", "name")):
            return None
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update(alias.asname or alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Global):
            names.update(node.names)
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
    return names


def declared_kind(tree: ast.Module, attribute: str) -> str | None:
    """The class of ``KINDS`` that makes ``attribute``, where the module binds it once, at its
    top level, as ``NAME = UserActivation(…)`` (or ``bpcheck.UserActivation(…)``); else None."""
    bound = [node for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id == attribute
             and isinstance(node.ctx, ast.Store)]
    for statement in tree.body if len(bound) == 1 else ():
        value = statement.value if isinstance(statement, ast.Assign | ast.AnnAssign) else None
        targets = (statement.targets if isinstance(statement, ast.Assign)
                   else [getattr(statement, "target", None)])
        named = any(isinstance(t, ast.Name) and t.id == attribute for t in targets)
        if named and isinstance(value, ast.Call):
            called = value.func.id if isinstance(value.func, ast.Name) else getattr(value.func, "attr", None)
            return called if called in KINDS else None
    return None


def locate(target: str) -> str | None:
    """Raise ValueError or ImportError (the message names the target) if MODULE:NAME surely
    fails: no colon, no such file or module, a file that does not parse, no NAME bound in it.
    Return the class that makes NAME where the source says so (``declared_kind``)."""
    module_name, attribute = split_target(target)
    path = source_file(module_name)
    if path is None:
        return None
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as error:
        raise ImportError(f"could not import {module_name}: SyntaxError: {error}") from None
    except (OSError, ValueError) as error:  # unreadable; NUL bytes
        raise ImportError(f"could not import {module_name}: {type(error).__name__}: {error}") from None
    names = bound_names(tree)
    if names is not None and attribute not in names:
        raise ValueError(f"{module_name} has no attribute {attribute!r}")
    return declared_kind(tree, attribute)
