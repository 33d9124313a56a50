"""``bpcheck verify`` never passes a rule it could not check: a user rule that raises fails
(naming the part that raised), a search that checked nothing fails, and bad usage is exit 2."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import numpy as np
import pytest

from bpcheck.user.extend import UserActivation, UserLoss, load_user_rule, verify
from manual.rules import RULES
from tests.assertions import run_cli

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "user_rules.py"

#: User rules that raise, each from one part; written to a module of their own (see ``bad_rules``).
BAD_RULES = textwrap.dedent('''
    import jax
    import numpy as np
    import torch
    from scipy.special import expit

    from bpcheck.user.extend import UserActivation, UserLoss

    def swish(z):
        return z * expit(z)

    def derivative(z, a):
        s = expit(z)
        return s + a * (1.0 - s)

    def asserts(z, a):
        assert False, "my derivative is not finished"

    def value_error(z, a):
        raise ValueError("no derivative for [this] z")

    def group(z):
        raise ExceptionGroup("two problems", [ValueError("one"), TypeError("two")])

    def torch_fails(z):
        raise ValueError("no torch version")

    def key_error(p, y):
        raise KeyError("gradient")

    T, J = (lambda z: z * torch.sigmoid(z)), (lambda z: z * jax.nn.sigmoid(z))
    swish_asserts = UserActivation("swish_asserts", swish, asserts, torch=T, jax=J)
    swish_bad = UserActivation("swish_bad", swish, value_error, torch=T, jax=J)
    swish_group = UserActivation("swish_group", group, derivative, torch=T, jax=J)
    swish_torch = UserActivation("swish_torch", swish, derivative, torch=torch_fails, jax=J)
    half_sse_bad = UserLoss("half_sse_bad", lambda p, y: 0.5 * np.sum((p - y) ** 2, axis=-2), key_error,
                            torch=lambda p, y: 0.5 * ((p - y) ** 2).sum(dim=1),
                            jax=lambda p, y: 0.5 * ((p - y) ** 2).sum(axis=0))
''')


@pytest.fixture(scope="session")  # once per process: a module, once imported, stays imported
def bad_rules(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("user") / "bad_user_rules.py"
    path.write_text(BAD_RULES)
    return path


@pytest.mark.parametrize(("name", "part", "error", "message"), [
    ("swish_asserts", "derivative", AssertionError, "my derivative is not finished"),
    ("swish_group", "value", ExceptionGroup, "two problems"),
    ("swish_torch", "torch", ValueError, "no torch version"),
    ("half_sse_bad", "gradient", KeyError, "gradient"),
])
def test_a_user_rule_that_raises_fails_naming_the_part(bad_rules, name, part, error, message):
    verdict = verify(load_user_rule(f"{bad_rules}:{name}"), max_examples=3)
    assert not verdict.passed and verdict.failure is None
    assert isinstance(verdict.raised, error) and message in str(verdict.raised)
    assert verdict.part == part
    assert verdict.raised_on is not None and all(width == 1 for width in verdict.raised_on.spec.sizes)


def test_verify_command_prints_what_the_user_code_raised(bad_rules):
    out = run_cli(["verify", f"{bad_rules}:swish_bad", "--examples", "3"], 1)
    said = "swish_bad: your derivative raised ValueError: no derivative for [this] z"
    assert out.count(said) == 1, out  # once (it was printed twice, as repr and as the message)
    assert "bad_user_rules.py:20 in value_error" in out and "agree" not in out  # where, in the user's file


def test_a_check_that_verified_no_network_is_not_verified_with_the_reason_and_exits_three(monkeypatch):
    never = dataclasses.replace(RULES["derived"], unsupported_reason=lambda spec: "not this one")
    monkeypatch.setitem(RULES, "derived", never)
    verdict = verify(load_user_rule(f"{EXAMPLES}:swish"), max_examples=2)
    assert verdict.examples == 0 and not verdict.passed and verdict.raised is None
    assert "unsupported (not this one)" in verdict.unchecked_reason()
    out = run_cli(["verify", f"{EXAMPLES}:swish", "--examples", "2"], 3)
    assert "swish: NOT VERIFIED — no network was checked: all" in out
    assert "unsupported (not this one)" in out and "agree" not in out


@pytest.mark.parametrize(("options", "message"), [
    (["--examples", "0"], "argument --examples: must be an integer from 1 to 100000, got 0"),
    (["--examples", "-5"], "argument --examples: must be an integer from 1 to 100000, got -5"),
    (["--examples", "many"], "argument --examples: expected an integer, got 'many'"),
    (["--seed", "-1"], "argument --seed: must be an integer >= 0, got -1"),
])
def test_bad_verify_options_are_usage_errors_naming_the_option(options, message):
    assert message in run_cli(["verify", f"{EXAMPLES}:swish", *options], 2)


@pytest.mark.parametrize(("source", "attribute", "message"), [
    ("", "missing", "{path} has no attribute 'missing'"),
    ("rule = None\nraise RuntimeError('broken at import')", "rule",
     "could not import {path}: RuntimeError: broken at import"),
    ("def rule(:\n", "rule", "could not import {path}: SyntaxError: "),
    ("import sys\nrule = None\nsys.exit(3)", "rule", "could not import {path}: SystemExit: 3"),
    ("rule = 42", "rule",
     "{path}:rule is int 42; expected a UserRule, UserActivation, UserLoss or UserLayer"),
])
def test_a_bad_target_is_a_usage_error_that_says_why(tmp_path, source, attribute, message):
    path = tmp_path / f"{tmp_path.name}.py"  # a fresh module name per case
    path.write_text(source)
    assert message.format(path=path) in run_cli(["verify", f"{path}:{attribute}"], 2)


def test_a_missing_file_or_module_is_a_usage_error():
    assert "could not import no/such/file.py: no such file" in run_cli(["verify", "no/such/file.py:rule"], 2)
    assert ("could not import no_such_module_anywhere: ModuleNotFoundError: No module named "
            "'no_such_module_anywhere'") in run_cli(["verify", "no_such_module_anywhere:rule"], 2)


def f(p, y):
    return p


@pytest.mark.parametrize(("changes", "error", "message"), [
    ({"targets": "logits"}, ValueError, r"targets='logits' is unknown; expected one of \['values', "
                                        r"'probabilities', 'distributions', 'one_hot', 'labels'\]"),
    ({"layout": "rows"}, ValueError, r"layout='rows' is unknown"),
    ({"gradient": None}, TypeError, r"gradient=None must be callable"),
    ({"name": "a:b"}, ValueError, r"name='a:b' must be a non-empty str without ':' or ','"),
])
def test_a_bad_user_loss_is_refused_on_construction(changes, error, message):
    with pytest.raises(error, match=message):
        UserLoss(**({"name": "l", "per_sample": f, "gradient": f, "torch": f, "jax": f} | changes))


@pytest.mark.parametrize(("changes", "error", "message"), [
    ({"derivative": "σ′"}, TypeError, r"derivative='σ′' must be callable"),
    ({"derivative_bound": np.inf}, ValueError, r"derivative_bound=inf must be a finite number > 0"),
    ({"derivative_bound": 0}, ValueError, r"derivative_bound=0 must be a finite number > 0"),
    ({"name": ""}, ValueError, r"name='' must be a non-empty str"),
])
def test_a_bad_user_activation_is_refused_on_construction(changes, error, message):
    with pytest.raises(error, match=message):
        UserActivation(**({"name": "a", "value": f, "derivative": f, "torch": f, "jax": f} | changes))


# 20: a network meets the kink; its derivative there is a convention (torch's, 0.1), and finite
# differences straddling it no longer decide alone (reference/numeric.py), so it agrees, and the
# hint still says to declare the kink
@pytest.mark.parametrize(("examples", "code"), [("1", 0), ("20", 0)])
def test_verify_points_out_an_undeclared_kink_whatever_the_verdict(tmp_path, examples, code):
    path = tmp_path / f"{tmp_path.name}.py"
    path.write_text("import numpy as np, torch.nn.functional as F, jax\n"
                    "from bpcheck import UserActivation\n"
                    "leaky = UserActivation('leaky_nokink', lambda z: np.where(z > 0, z, 0.1 * z),\n"
                    "    lambda z, a: np.where(z > 0, 1.0, 0.1), torch=lambda z: F.leaky_relu(z, 0.1),\n"
                    "    jax=lambda z: jax.nn.leaky_relu(z, 0.1))\n")
    out = run_cli(["verify", f"{path}:leaky", "--examples", examples], code)
    assert "a kink between z = 0 and z = 0.025" in out and "where no kink is declared" in out
    assert out.count("where no kink is declared") == 1
