"""``bpcheck verify``'s target is located, then imported, before torch and jax load
(``bpcheck/cli/target.py``): a bad one is a usage error (exit 2) naming it, with neither
framework imported, nor Hypothesis."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from bpcheck.cli.target import bound_names, declared_kind, locate
from tests.fresh import user_environment


@pytest.mark.parametrize(("target", "source", "message"), [
    ("{dir}/rules.py", None, "expected MODULE:NAME (e.g. my_rules:swish), got '{dir}/rules.py'"),
    ("", None, "expected MODULE:NAME (e.g. my_rules:swish), got ''"),
    (":swish", None, "expected MODULE:NAME"),
    ("{dir}/absent.py:swish", None, "could not import {dir}/absent.py: no such file"),
    ("no_such_module_anywhere:swish", None,
     "could not import no_such_module_anywhere: ModuleNotFoundError: No module named "
     "'no_such_module_anywhere'"),
    ("{dir}/rules.py:swish", "swosh = 1\n", "{dir}/rules.py has no attribute 'swish'"),
    ("{dir}/rules.py:swish", "def swish(:\n", "could not import {dir}/rules.py: SyntaxError: "),
    # imported, before torch and jax (before: after them, 4-10 s)
    ("{dir}/rules.py:swish", "swish = None\nraise RuntimeError('broken at import')\n",
     "could not import {dir}/rules.py: RuntimeError: broken at import"),
    ("{dir}/rules.py:swish", "def __getattr__(name):\n    raise AttributeError(name)\n",
     "{dir}/rules.py has no attribute 'swish'"),
    ("{dir}/rules.py:swish", "swish = 3\n", "{dir}/rules.py:swish is int 3; expected a UserRule"),
])
def test_a_bad_target_is_refused_before_torch_or_jax_loads(tmp_path, target, source, message):
    """The check runs in a fresh interpreter that then reports which frameworks it imported."""
    if source is not None:
        (tmp_path / "rules.py").write_text(source)
    code = ("import sys\nfrom bpcheck.cli import main\n"
            f"code = main(['verify', {target.format(dir=tmp_path)!r}])\n"
            "print(code, sorted({'torch', 'jax', 'hypothesis'} & set(sys.modules)))")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=user_environment(tmp_path),
                         capture_output=True, text=True, timeout=120)
    out = " ".join(run.stdout.split())
    assert out.endswith("2 []"), out + run.stderr
    assert message.format(dir=tmp_path) in out
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("binding", [
    "swish = 1", "swish: int = 1", "a, (b, swish) = 1, (2, 3)", "def swish(z): pass",
    "async def swish(z): pass", "class swish: pass", "import numpy as swish", "from os import path as swish",
    "import swish.sub", "for swish in (): pass", "with open(__file__) as swish: pass",
    "if True:\n    swish = 1", "try:\n    pass\nexcept Exception as swish:\n    pass",
    "def f():\n    global swish\n    swish = 1", "(swish := 1)",
    "match 1:\n    case swish: pass",
])
def test_every_way_of_binding_a_name_counts(binding):
    assert "swish" in bound_names(ast.parse(binding))


@pytest.mark.parametrize("source", [
    "from rules_base import *", "globals()['swish'] = 1", "exec('swish = 1')",
    "import sys\nsetattr(sys.modules[__name__], 'swish', 1)", "def __getattr__(name): return 1",
])
def test_a_module_that_may_bind_names_unseen_is_left_to_the_import(tmp_path, source):
    assert bound_names(ast.parse(source)) is None
    (tmp_path / "dynamic.py").write_text(source)
    locate(f"{tmp_path}/dynamic.py:swish")  # no error: importing it will tell


@pytest.mark.parametrize(("source", "kind"), [
    ("swish = UserActivation('swish', v, d, torch=t, jax=j)", "UserActivation"),
    ("import bpcheck\nswish: object = bpcheck.UserLayer('swish', f, b)", "UserLayer"),
    ("swish = UserRule('r', g)", "UserRule"),
    ("swish = make_rule()", None),
    ("swish = UserActivation('a', v, d)\nswish = wrap(swish)", None),  # bound twice: the import tells
    ("if True:\n    swish = UserLoss('l', v, g)", None),  # not at the top level
])
def test_the_kind_of_a_target_is_read_from_its_constructor(source, kind):
    assert declared_kind(ast.parse(source), "swish") == kind


def test_pins_on_a_declared_activation_are_refused_without_importing_it(tmp_path):
    """--layers pins a UserRule's network: where the source shows the target is made by
    UserActivation(…), that is said before the module (here 30 s to import) and torch load."""
    (tmp_path / "slow.py").write_text("import time\ntime.sleep(30)\nfrom bpcheck import UserActivation\n"
                                      "swish = UserActivation('swish', abs, abs, torch=abs, jax=abs)\n")
    code = ("import sys\nfrom bpcheck.cli import main\n"
            "code = main(['verify', 'slow.py:swish', '--layers', '4,5,3'])\n"
            "print(code, sorted({'torch', 'jax', 'hypothesis'} & set(sys.modules)))")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=user_environment(tmp_path),
                         capture_output=True, text=True, timeout=20)
    out = " ".join(run.stdout.split())
    assert out.endswith("2 []"), out + run.stderr
    assert "--layers: pins a UserRule's network; swish is a UserActivation" in out
