"""Finite differences by projection (``reference.projection``, ``bpcheck.core.projected``): they
still catch an error in one entry of a large tensor, place a disagreement entry by entry, repeat
for the same problem, and say why where they settle nothing."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bpcheck.core.datasets import random_data
from bpcheck.core.projected import PLACE_ENTRIES, PROJECTED, projected_row
from bpcheck.core.tolerances import projected_allowance
from bpcheck.core.verdicts import AGREES, DIFFERS, INCONCLUSIVE
from bpcheck.core.witness_rows import compare_witnesses
from bpcheck.mlp.compare import ask_witnesses, compare_rule, placed
from bpcheck.mlp.problem import Problem
from manual import network
from manual.initialisers import truncated_normal
from manual.rules import RULES, UpdateRule
from manual.spec import Spec
from reference.projection import direction_seed, unit_directions

ENTRY = (17, 29)  # the one entry of W1 (64 × 32) the mutant changes


def large_problem(dtype: str = "float64", seed: int = 0) -> Problem:
    """A 32-64-10 MLP (2,048 entries in W1) at batch 32, as the benchmark's."""
    spec = Spec((32, 64, 10), ("tanh", "softmax"), "softmax-ce", "mean", "vector", "rows", dtype)
    rng = np.random.default_rng(seed)
    X, Y = random_data(spec, 32, rng)
    params = {k: v.astype(dtype) for k, v in truncated_normal(spec, rng).items()}
    return Problem(spec, params, X, Y, 0.1)


def one_entry_off(share: float) -> UpdateRule:
    """The derived rule with W1[ENTRY] moved by ``share`` of W1's largest gradient entry."""
    def directions(spec, params, X, Y, lr):
        grads = network.gradients(spec, params, X, Y)
        w1 = grads["W1"].copy()
        w1[ENTRY] += w1.dtype.type(share * float(np.max(np.abs(w1))))
        return grads | {"W1": w1}
    return UpdateRule("one-entry", "W1[17, 29] off", True, directions,
                      lambda s, p, X, Y, lr: {k: p[k] - p[k].dtype.type(lr) * g
                                              for k, g in directions(s, p, X, Y, lr).items()})


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_mutant_changing_one_entry_of_a_large_tensor_is_caught_by_the_projection_alone(dtype):
    """W1[17, 29] off by a tenth of W1's largest entry: the projected row of W1 differs by itself
    (|w_j|·δ ≈ δ/45 still stands above Σ|w_i|e_i + 8·estimate), the other parameters' agree,
    and per-entry differences on W1's most differing entries find the very entry."""
    problem = large_problem(dtype)
    truth = ask_witnesses(problem)
    assert set(truth.projections[PROJECTED]) == {"W1", "b1", "W2", "b2"} and PROJECTED not in truth.errors
    report = compare_rule(one_entry_off(0.1), problem, truth)
    projected = {row.parameter: row.verdict for row in report.rows if row.directions}
    assert projected == {"W1": DIFFERS, "b1": AGREES, "W2": AGREES, "b2": AGREES}, projected
    [placing] = [row for row in report.rows if row.witness == PROJECTED and not row.directions]
    assert (placing.parameter, placing.verdict, placing.error.where) == ("W1", DIFFERS, ENTRY)
    assert placing.checked == PLACE_ENTRIES
    assert compare_rule(RULES["derived"], problem, truth).verdict == AGREES


def test_a_witness_that_parts_from_the_projection_is_placed_entry_by_entry():
    """torch's W2 moved in one entry (as if the witness were wrong): the witnesses' projected row
    of W2 differs, and per-entry differences run on W2 alone, where they differ too."""
    problem = large_problem()
    truth = ask_witnesses(problem)
    torch = dict(truth.gradients["torch"])
    torch["W2"] = torch["W2"].copy()
    torch["W2"][3, 5] += 0.5 * float(np.max(np.abs(torch["W2"])))
    wrong = placed(replace(truth, gradients=truth.gradients | {"torch": torch}), problem)
    rows = [row for row in compare_witnesses(problem, wrong) if PROJECTED in row.rule]
    assert {row.parameter for row in rows if row.differs} == {"W2"}
    entries = np.isfinite(wrong.gradients[PROJECTED]["W2"])
    assert entries.sum() == PLACE_ENTRIES and not np.isfinite(wrong.gradients[PROJECTED]["W1"]).any()


def test_the_directions_repeat_for_a_problem_and_differ_between_problems():
    first, again, other = (ask_witnesses(large_problem(seed=s)) for s in (0, 0, 1))
    for name in ("W1", "b2"):
        np.testing.assert_array_equal(first.projections[PROJECTED][name].directions,
                                      again.projections[PROJECTED][name].directions)
        assert not np.allclose(first.projections[PROJECTED][name].directions,
                               other.projections[PROJECTED][name].directions)
    w = unit_directions((5, 7), 3, direction_seed(first.problem), "W1")
    np.testing.assert_allclose(np.linalg.norm(w.reshape(3, -1), axis=1), 1.0)


def test_the_projected_allowance_bounds_every_error_within_the_entries_allowances():
    """|(a − g)·w| ≤ Σ|w_i|·e_i whenever |a_i − g_i| ≤ e_i: at the worst signs it is reached,
    so the bound is the least that holds without knowing the signs."""
    rng = np.random.default_rng(3)
    w = unit_directions((6, 4), 2, 7, "W")
    e = rng.uniform(0, 1e-6, (6, 4))
    worst = np.sign(w[0]) * e  # an error of the worst signs along w[0]
    allowed = projected_allowance(w, e, np.zeros(2), np.ones(2), np.ones(2))
    assert np.isclose(abs(float(np.sum(w[0] * worst))), allowed[0], rtol=1e-12)
    for _ in range(100):
        error = rng.uniform(-1, 1, (6, 4)) * e
        assert np.all(np.abs(w.reshape(2, -1) @ error.ravel()) <= allowed * (1 + 1e-12))


def test_a_projection_whose_allowance_cannot_show_an_error_is_inconclusive_and_says_why():
    """Allowances widened to the size of the gradient itself: the row could not have caught a
    real error, so it does not agree, and its reason names the ratio."""
    problem = large_problem()
    truth = ask_witnesses(problem)
    exact = truth.gradients["torch"]["W1"]
    wide = {"W1": np.full(exact.shape, float(np.max(np.abs(exact))))}
    row = projected_row("derived", truth, PROJECTED, "W1", exact, wide)
    assert row.verdict == INCONCLUSIVE and "of an error as large as the gradient" in row.reason


def test_a_layer_rule_that_parts_from_torch_is_placed_entry_by_entry():
    """A conv backward with the kernel unflipped: wrong in ∂L/∂x only. Both projections of x
    differ (torch's forward and the rule's own), the other parameters' agree, and per-entry
    differences of torch's forward on x's most differing entries side with torch where it
    differs most."""
    from bpcheck.layers.compare import OWN_FORWARD, compare_stack
    from bpcheck.layers.mutants import LAYER_MUTANTS
    from bpcheck.layers.problem import random_problem
    from manual.stack import Stack

    problem = random_problem(Stack("conv2d:3,k3,p1;relu;flatten;dense:2", (1, 6, 6)), 3, seed=0)
    (report,), _, _ = compare_stack(problem, [LAYER_MUTANTS["conv_flipped_kernel"]])
    projected = {(row.parameter, row.witness): row.verdict for row in report.rows if row.directions}
    assert {key for key, verdict in projected.items() if verdict == DIFFERS} == {
        ("x", PROJECTED), ("x", OWN_FORWARD)}, projected
    [torch_row] = [row for row in report.rows if row.parameter == "x" and row.witness == "torch"]
    [placing] = [row for row in report.rows if row.witness == PROJECTED and not row.directions]
    assert (placing.parameter, placing.verdict, placing.checked) == ("x", DIFFERS, PLACE_ENTRIES)
    assert placing.error.where == torch_row.error.where


def test_parts_says_what_the_projected_row_says():
    """``parts`` (which places a disagreement without building rows) agrees with the row's
    verdict, for a right gradient and a wrong one."""
    from bpcheck.core.projected import parts

    problem = large_problem()
    truth = ask_witnesses(problem)
    exact = truth.gradients["torch"]
    for name in exact:
        wrong = exact[name] + 0.5 * float(np.max(np.abs(exact[name])))
        for candidate in (exact[name], wrong):
            row = projected_row("", truth, PROJECTED, name, candidate, truth.witness_allowance)
            assert parts(truth, PROJECTED, name, candidate, truth.witness_allowance) == row.differs
        assert parts(truth, PROJECTED, name, wrong, truth.witness_allowance)


def test_one_richardson_over_every_array_is_one_per_array_and_step():
    """``_estimates`` takes every array's every step in one ``richardson``: D_h, its estimate
    with ε·max(|D_h|, |D_2h|) added and the rounding ratio that grows a step are, column by
    column, what one call per array and step gives (arrays of different direction counts,
    one step or two, a loss that is not finite)."""
    from reference.projection import ROUNDING_SHARE, STEPS, _estimates, richardson

    rng = np.random.default_rng(3)
    counts, steps = {"W1": 2, "b1": 3, "W2": 1}, {"W1": [6e-6, 2e-4], "b1": [1e-5], "W2": [3e-6, 1e-4]}
    losses = {name: (rng.normal(1.0, 1e-5, size=len(steps[name]) * len(STEPS) * counts[name]),
                     rng.uniform(0, 1e-12, size=len(steps[name]) * len(STEPS) * counts[name]))
              for name in counts}
    losses["b1"][0][2] = np.inf
    d_h, estimate, ratios = _estimates(losses, list(counts), steps, counts, 1.0, 4096.0, 320.0)
    column, group = 0, 0
    for name, count in counts.items():
        value = losses[name][0].reshape(len(steps[name]), len(STEPS), count)
        off = losses[name][1].reshape(len(steps[name]), len(STEPS), count).max(axis=1)
        for i, h in enumerate(steps[name]):
            with np.errstate(all="ignore"):
                d, error, rounding = richardson(value[i], 1.0, h, 4096.0, 320.0)
                stepped = off[i] * np.maximum(np.abs(d), np.abs(value[i, 2] - value[i, 3]) / (4 * h))
                ratio = np.max(rounding) / (ROUNDING_SHARE * np.max(np.abs(d)))
            np.testing.assert_array_equal(d_h[column:column + count], d)
            np.testing.assert_array_equal(estimate[column:column + count], error + stepped)
            np.testing.assert_array_equal(ratios[group], ratio)
            column, group = column + count, group + 1
    assert not np.isfinite(d_h[4:7]).all()  # the loss that is not finite stays so


@pytest.mark.parametrize("largest", [1.0, 1e99, 1e200])
@pytest.mark.parametrize("l2", [0.0, 0.25])
def test_a_copy_s_penalty_is_half_lambda_times_its_penalised_squares(largest, l2):
    """``penalty_of``: ½λ·Σθ² over each copy's penalised entries; without a penalty the same
    0·Σθ² without the sum where every entry is within ±1e100 (0), and with it beyond (NaN where
    the squares overflow)."""
    from reference.numeric_directions import penalised, penalty_of

    spec = Spec((3, 4, 2), ("tanh", "sigmoid"), "half-sse", l2=l2)
    moved = np.random.default_rng(0).uniform(-largest, largest, size=(5, 4, 3))
    mask = penalised(spec, "W1", (4, 3))
    with np.errstate(over="ignore", invalid="ignore"):
        expected = 0.5 * spec.l2 * np.sum(np.square(np.where(mask, moved, 0.0)), axis=(1, 2))
        found = penalty_of(spec, {"W1": mask} if l2 else {}, "W1", moved)
    np.testing.assert_array_equal(found, expected, strict=True)


@pytest.mark.parametrize("prediction", ["torch", "zero", "huge"])
def test_a_predicted_step_gives_together_s_answer_in_half_the_copies_and_a_misprediction_costs_a_call(
        prediction, monkeypatch):
    """With ``expected`` (a gradient predicting |D_h|) each array is evaluated at the one step
    ``together`` would settle on — half its copies — and the projections are those of
    ``together``; a prediction of nothing (zero) takes the grown step at once, and one that is
    far too large (h looks enough) takes a second call, at the grown step, and the same answer."""
    import reference.numeric_directions as numeric_directions
    from reference import torch_ref
    from reference.projection import DIRECTIONS, GROWTH, STEPS, UNIT_ROUNDOFF, along

    p = large_problem()
    grads = torch_ref.gradients(p.spec, p.params, p.X, p.Y)
    expected = {"torch": grads, "zero": {k: 0 * g for k, g in grads.items()},
                "huge": {k: 1e9 * g for k, g in grads.items()}}[prediction]
    together = numeric_directions.directional_with_error(p.spec, p.params, p.X, p.Y, 7)
    calls = []

    def counted(evaluate, *args, **kwargs):
        def evaluated(moved):
            calls.append({name: len(copies) for name, copies in moved.items()})
            return evaluate(moved)
        return along(evaluated, *args, **kwargs)

    monkeypatch.setattr(numeric_directions, "along", counted)
    chosen = numeric_directions.directional_with_error(p.spec, p.params, p.X, p.Y, 7, expected=expected)
    grown = {name: GROWTH * float(np.cbrt(UNIT_ROUNDOFF)) * max(1.0, float(np.max(np.abs(v))))
             for name, v in p.params.items()}
    assert all(together[name].step == grown[name] for name in p.params)  # h is not enough on it
    for name in p.params:
        assert chosen[name].step == together[name].step
        np.testing.assert_array_equal(chosen[name].derivatives, together[name].derivatives)
        np.testing.assert_array_equal(chosen[name].errors, together[name].errors)
    one_step = {name: len(STEPS) * DIRECTIONS for name in p.params}  # half of together's
    assert calls == [one_step] * (2 if prediction == "huge" else 1)
