"""bpcheck: hand-derived backpropagation checked against PyTorch, JAX and finite differences.

    from bpcheck import Problem, UserActivation, ask_witnesses, compare_rule, verify
    from manual.rules import RULES; from manual.spec import Spec
    problem = Problem(Spec((3, 4, 2), ("tanh", "sigmoid"), "half-sse"), params, X, Y, lr=0.1)
    compare_rule(RULES["derived"], problem, ask_witnesses(problem)).verdict  # "agrees"
    verify(UserActivation("swish", value, derivative, torch=..., jax=...)).passed  # True or False
    report = check(UserRule("mine", my_gradients, conventions=Conventions(...)))  # your backprop
    report.passed; print(report)  # in a notebook the report renders itself
    check(UserLayer("mine", forward, backward, like="conv2d:4,k3,s2,p1", parameters=("w", "b"))).passed

The names below load on first use, so ``import bpcheck`` imports neither torch nor jax.
Hypothesis keeps what it learns in the user's cache directory (``bpcheck.core.caches``), not in
``.hypothesis/`` beside the script, unless Hypothesis was loaded first (pytest) or told otherwise.
"""

from __future__ import annotations

import importlib

from bpcheck.core.caches import keep_hypothesis_files, user_cache

if (_cache := user_cache()) is not None:
    keep_hypothesis_files(_cache)

#: public name → the module that defines it
_EXPORTS = {
    "Problem": "bpcheck.mlp.problem",
    "ask_witnesses": "bpcheck.mlp.compare",
    "compare_rule": "bpcheck.mlp.compare",
    "compare_all": "bpcheck.mlp.compare",
    "RuleReport": "bpcheck.core.compare",
    "AGREES": "bpcheck.core.verdicts",
    "DIFFERS": "bpcheck.core.verdicts",
    "INCONCLUSIVE": "bpcheck.core.verdicts",
    "verify": "bpcheck.user.extend",
    "load_user_rule": "bpcheck.user.extend",
    "UserActivation": "bpcheck.user.extend",
    "UserLoss": "bpcheck.user.extend",
    "UserRule": "bpcheck.user.rule",
    "Conventions": "bpcheck.mlp.conventions",
    "check": "bpcheck.user.checking",
    "CheckReport": "bpcheck.user.report",
    "problems": "bpcheck.mlp.strategies",
    "UserLayer": "bpcheck.user.layer",
    "check_layer": "bpcheck.user.layer_check",
    "object_pair": "bpcheck.user.styles",
    "RecordingOptimizer": "bpcheck.user.styles",
    "StackProblem": "bpcheck.layers.problem",
    "compare_stack": "bpcheck.layers.compare",
    "specs": "bpcheck.mlp.strategies",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'bpcheck' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
