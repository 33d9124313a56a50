"""bpcheck beside its peers: milliseconds per check, side by side in one run.

Three MLPs (relu hidden layers, softmax output, softmax cross-entropy, mean; float64; batch 32;
5 seeds each) are checked by: bpcheck's full check (torch, jax, finite differences by
projection, allowances, rows), bpcheck without finite differences, ``torch.autograd.gradcheck``
(every entry; and ``fast_mode=True``, one random projection), ``jax.test_util.check_grads``
(order 1, reverse mode, the loss jit-compiled in the warm-up round) and a plain NumPy loop of
central differences over every entry compared with ``np.allclose``. The peers check a
framework's own gradient, bpcheck a hand-written one against three witnesses. A peer's false
alarm (it rejects a correct gradient, e.g. at a relu kink) is counted beside its time. Then
bpcheck's full check of the small CNN and the small sequence model of ``bench/layers.py``.
Every case runs on the same problems in interleaved rounds (``rounds.interleaved``); medians.
Run with ``make bench``.
"""

from __future__ import annotations

import statistics
from collections import Counter

import numpy as np
from layers import CNN, SEQUENCE
from rounds import interleaved
from tables import show

from bpcheck.core.datasets import random_data
from bpcheck.core.runtime import one_thread
from bpcheck.layers.compare import DERIVED, ask_stack_witnesses, compare_stack_rule
from bpcheck.layers.problem import random_problem
from bpcheck.mlp.compare import ask_witnesses, compare_rule
from bpcheck.mlp.problem import Problem
from manual import network
from manual.initialisers import truncated_normal
from manual.rules import RULES
from manual.spec import Spec
from manual.stack import Stack
from reference import numeric

ROUNDS, SEEDS, BATCH = 5, 5, 32
NETWORKS = ((8, 8, 8, 4), (4, 16, 16, 3), (32, 64, 10))
alarms: Counter = Counter()  # (case, network) → false alarms over every call


def mlp(sizes: tuple[int, ...], seed: int) -> Problem:
    spec = Spec(sizes, ("relu",) * (len(sizes) - 2) + ("softmax",), "softmax-ce", "mean", "vector", "rows")
    rng = np.random.default_rng(seed)
    X, Y = random_data(spec, BATCH, rng)
    return Problem(spec, truncated_normal(spec, rng), X, Y, 0.1)


def torch_check(fast: bool):
    import torch

    from reference import torch_ref

    def check(p: Problem) -> bool:
        names = list(p.params)
        x, y = torch_ref.samples_as_rows(p.spec, p.X), torch_ref.samples_as_rows(p.spec, p.Y)
        leaves = tuple(torch.tensor(p.params[n], dtype=torch.float64, requires_grad=True) for n in names)
        def loss(*tensors):
            return torch_ref._loss(p.spec, dict(zip(names, tensors, strict=True)), x, y)
        return torch.autograd.gradcheck(loss, leaves, fast_mode=fast, raise_exception=False)
    return check


compiled: dict = {}


def jax_check(p: Problem) -> bool:
    import jax
    from jax.test_util import check_grads

    from reference import jax_ref

    if id(p) not in compiled:  # the warm-up round compiles each problem's loss once
        x, y, code = jax_ref._cols(p.spec, p.X), jax_ref._cols(p.spec, p.Y), jax_ref._code(p.spec)
        compiled[id(p)] = jax.jit(lambda params: jax_ref._loss(params, x, y, p.spec, code))
    try:
        check_grads(compiled[id(p)], (jax_ref._as_float64(p.params),), order=1, modes=["rev"])
    except AssertionError:
        return False
    return True


def plain_loop(p: Problem) -> bool:
    """Central differences of every entry, h = 1e−6·max(1, |θ_i|), against the derived gradient."""
    exact = network.gradients(p.spec, p.params, p.X, p.Y)
    ok = True
    for name, value in p.params.items():
        moved = {k: np.array(v, np.float64) for k, v in p.params.items()}
        flat, found = moved[name].reshape(-1), np.empty(value.size)
        for i in range(value.size):
            keep, h = flat[i], 1e-6 * max(1.0, abs(flat[i]))
            flat[i] = keep + h
            up = numeric.loss(p.spec, moved, p.X, p.Y)
            flat[i] = keep - h
            found[i] = (up - numeric.loss(p.spec, moved, p.X, p.Y)) / (2 * h)
            flat[i] = keep
        ok &= bool(np.allclose(found, exact[name].ravel(), rtol=1e-4, atol=1e-6))
    return ok


def counted(name: str, check):
    """``check``, with each False it returns (a correct gradient rejected) counted."""
    def run(p):
        if not check(p):
            alarms[name, p.spec.sizes] += 1
    return run


CASES = {
    "bpcheck full": lambda p: compare_rule(RULES["derived"], p, ask_witnesses(p)),
    "bpcheck without FD": lambda p: compare_rule(RULES["derived"], p, ask_witnesses(p, False)),
    "torch gradcheck": counted("torch gradcheck", torch_check(False)),
    "gradcheck fast_mode": counted("gradcheck fast_mode", torch_check(True)),
    "jax check_grads": counted("jax check_grads", jax_check),
    "plain central FD loop": counted("plain central FD loop", plain_loop),
}


def cell(name: str, sizes, ms: float) -> str:
    return f"{ms:.1f}" + (f" ({alarms[name, sizes]} false alarms)" if alarms[name, sizes] else "")


def main() -> None:
    rows = []
    with one_thread():
        for sizes in NETWORKS:
            problems = [mlp(sizes, seed) for seed in range(SEEDS)]
            times = {name: statistics.median(v) for name, v in interleaved(CASES, problems, ROUNDS).items()}
            rows.append([f"{'-'.join(map(str, sizes))} MLP ({problems[0].n_params:,})",
                         *(cell(name, sizes, times[name]) for name in CASES),
                         f"{times['bpcheck full'] / times['gradcheck fast_mode']:.1f}",
                         f"{times['bpcheck full'] / times['bpcheck without FD']:.1f}"])
        for label, stack in (("small CNN", Stack(CNN, (1, 8, 8))),
                             ("small sequence model", Stack(SEQUENCE, (8,)))):
            problems = [random_problem(stack, 4, seed=seed) for seed in range(SEEDS)]
            times = {name: statistics.median(v) for name, v in interleaved({
                "full": lambda p: compare_stack_rule(DERIVED, p, ask_stack_witnesses(p)),
                "without": lambda p: compare_stack_rule(DERIVED, p, ask_stack_witnesses(p, False), False),
            }, problems, ROUNDS).items()}
            rows.append([f"{label} ({problems[0].n_params + (0 if stack.tokens else problems[0].x.size):,})",
                         f"{times['full']:.1f}", f"{times['without']:.1f}", "", "", "", "", "",
                         f"{times['full'] / times['without']:.1f}"])
    show("peers", f"ms per check beside the peers: median of {ROUNDS} interleaved rounds over {SEEDS} seeds "
         f"(MLPs: relu, softmax-ce, float64, batch {BATCH}; CNN and sequence model of bench/layers.py, "
         "batch 4); in brackets, a peer's false alarms on correct gradients over all calls",
         ["network (entries)", *CASES, "full ÷ fast_mode", "full ÷ without FD"], rows)


if __name__ == "__main__":
    main()
