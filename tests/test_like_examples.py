"""The ``like=`` examples as a user checks them (examples/course_layers.py, nhwc_layers.py,
scratch_layers.py: three codebases' styles; attention_layers.py: attention with separate query,
key and value): ``check()`` from Python gives each layer its verdict, and ``bpcheck verify
examples.MODULE:NAME`` in a fresh process (``tests/fresh.py``) the same at the same seed (one pair
of each module) — agrees for the right layer, WRONG for its twin — and each standard-kind layer's
adapter is 4 lines or fewer, with no torch or jax."""

from __future__ import annotations

import ast
import importlib
import json
import sys
from pathlib import Path

import pytest

from bpcheck import check
from bpcheck.cli.exits import EXIT_AGREES, EXIT_WRONG
from bpcheck.core.verdicts import AGREES, WRONG
from tests.fresh import run

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = 10
#: module → [(right layer, its twin, what the twin's report says)]
LAYERS = {
    "course_layers": [("affine", "affine_slip", "dense1.b (your b)"),
                      ("conv", "conv_slip", "conv1.W (your w)"),
                      ("max_pool", "max_pool_slip", "WRONG on x"),
                      ("batchnorm", "batchnorm_slip", "WRONG on x"),
                      ("rnn", "rnn_truncated", "rnn1.W_hh (your Wh)"),
                      ("lstm", "lstm_slip", "lstm1.c0 (your c0)"),
                      ("word_embedding", "word_embedding_slip", "emb1.W (your W)"),
                      ("dropout", "dropout_slip", "that forward differs from dropout:p0.25")],
    "nhwc_layers": [("conv", "conv_flipped", "the kernel flipped"),
                    ("avg_pool", "avg_pool_overwrites", "WRONG on x"),
                    ("batch_norm", "batch_norm_per_image", "WRONG on x")],
    "attention_layers": [("self_attention", "self_attention_diagonal", "attn1.W_q (your Wq)"),
                         ("cross_attention", "cross_attention_swapped", "WRONG on dk, dv")],
    "scratch_layers": [("dense", "dense_stale", "WRONG on x"),
                       ("batch_norm", "batch_norm_stale", "WRONG on x"),
                       ("dropout", "dropout_unscaled", "WRONG on x"),
                       ("dropout", "dropout_fresh_mask", "WRONG on x")],
}
CASES = list(dict.fromkeys((module, name, verdict, says) for module, pairs in LAYERS.items()
                           for right, twin, said in pairs
                           for name, verdict, says in ((right, AGREES, "agrees"), (twin, WRONG, said))))


def _layer(module: str, name: str):
    sys.path.insert(0, str(ROOT))
    try:
        return getattr(importlib.import_module(f"examples.{module}"), name)
    finally:
        sys.path.remove(str(ROOT))


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


#: The layers also verified in a fresh process: each module's first pair (the command runs the
#: same check; one right layer and one twin of each codebase's style show it, at 10–25 s a
#: process: every layer so took about a fifth of the suite's CPU time).
FRESH = {(module, name) for module, pairs in LAYERS.items() for name in pairs[0][:2]}


@pytest.mark.parametrize("module, name, verdict, says", CASES)
def test_check_and_verify_in_a_fresh_process_agree_on_each_layer(module, name, verdict, says, cache):
    report = check(_layer(module, name), EXAMPLES)
    assert report.verdict == verdict and says in str(report), str(report)
    if (module, name) not in FRESH:
        return
    done = run(["verify", f"examples.{module}:{name}", "--examples", str(EXAMPLES), "--json"], ROOT, cache)
    assert done.returncode == (EXIT_AGREES if verdict == AGREES else EXIT_WRONG), done.stderr[-2000:]
    assert json.loads(done.stdout)["verdict"] == report.verdict


def _adapter_lines(path: Path) -> dict[str, int]:
    """Lines of the body of each function that declares a UserLayer (the examples' adapters)."""
    tree = ast.parse(path.read_text())
    return {node.name: node.end_lineno - node.body[0].lineno + 1 for node in tree.body
            if isinstance(node, ast.FunctionDef) and "UserLayer" in ast.unparse(node)}


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_each_adapter_is_four_lines_or_fewer_without_torch_or_jax(module):
    path = ROOT / "examples" / f"{module}.py"
    lines = _adapter_lines(path)
    assert lines and all(n <= 4 for n in lines.values()), lines
    imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.Import | ast.ImportFrom)
                for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
    assert not imported & {"torch", "jax"}, imported
