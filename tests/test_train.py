"""`bpcheck train`: curves and plots written, same start and order for every rule."""

from __future__ import annotations

import csv
import importlib.util
import json

import numpy as np
from matplotlib.image import imread

from bpcheck.cli.plots import PLOT_DPI, PLOT_SIZE
from bpcheck.core.datasets import bundled_iris, load, split
from bpcheck.mlp.train import seed_program_spec, train_curve
from manual.initialisers import truncated_normal
from manual.rules import RULES
from manual.spec import Spec
from tests.assertions import run_cli


def test_train_writes_curves_and_plots_of_the_promised_size(tmp_path):
    assert "wrote" in run_cli(["train", "--epochs", "2", "--lrs", "0.01,0.1", "--out", str(tmp_path)], 0)
    with (tmp_path / "curves.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 2 * 2 * 2  # datasets × rules × learning rates × epochs
    assert {r["dataset"] for r in rows} == {"iris", "digits"}
    assert {r["rule"] for r in rows} == {"derived", "seed-literal"}
    curves = json.loads((tmp_path / "curves.json").read_text())
    assert all(0 <= a <= 1 for c in curves for a in c["test_accuracy"])
    for name in ("iris", "digits"):
        image = imread(tmp_path / f"{name}.png")
        assert image.shape[:2] == (round(PLOT_SIZE[1] * PLOT_DPI), round(PLOT_SIZE[0] * PLOT_DPI))
        assert image.std() > 0  # something was drawn


def test_every_rule_starts_from_the_same_weights_and_order():
    data = split("iris", 3)
    spec = seed_program_spec(data, None, 3)
    start = truncated_normal(spec, np.random.default_rng(3))
    kept = {k: v.copy() for k, v in start.items()}
    first = train_curve(RULES["derived"], spec, start, data, 0.05, 3, 7, 3, "iris")
    again = train_curve(RULES["derived"], spec, start, data, 0.05, 3, 7, 3, "iris")
    assert first == again
    for key, value in kept.items():  # training never writes to the shared start
        np.testing.assert_array_equal(start[key], value)
    # with η → 0 both rules stay at the shared start: their first losses coincide
    tiny = [train_curve(RULES[r], spec, start, data, 1e-12, 1, 7, 3, "iris") for r in RULES]
    assert np.isclose(tiny[0].loss[0], tiny[1].loss[0], rtol=1e-9)


def test_bad_train_arguments_exit_two():
    out = run_cli(["train", "--datasets", "mnist", "--lrs", "-1"], 2)
    assert "unknown 'mnist'" in out and "not a positive learning rate" in out


def test_any_family_member_trains_and_seed_literal_says_where_it_cannot(tmp_path):
    out = run_cli(["train", "--datasets", "iris", "--hidden", "5,5", "--activations", "tanh,relu,softmax",
                   "--loss", "softmax-ce-labels", "--epochs", "1", "--lrs", "0.01",
                   "--out", str(tmp_path)], 0)
    assert "4-5-5-3" in out and "not run: seed-literal on iris" in out
    assert (tmp_path / "iris.png").stat().st_size > 0


def test_iris_read_from_scikit_learns_file_is_load_iris(monkeypatch):
    """The default report reads iris without importing scikit-learn: the same arrays as
    load_iris, and load_iris itself when the file is not where it is looked for."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    for data, target in (bundled_iris(), load("iris")):
        np.testing.assert_array_equal(data, iris.data)
        np.testing.assert_array_equal(target, iris.target)
        assert (data.dtype, target.dtype) == (iris.data.dtype, iris.target.dtype)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, package=None: None)
    assert bundled_iris() is None
    np.testing.assert_array_equal(load("iris")[0], iris.data)


def test_truncated_normal_draws_what_scipy_stats_truncnorm_draws():
    """Inverse CDF of the same uniforms: scipy.stats.truncnorm's values to rounding, every weight
    and bias within its layer's bound ±1/√(fan_in + 1), for every fan-in up to 16, both bias
    styles. Rounding: a few ε/4 in Φ ∈ [0.24, 0.76] (ours directly, truncnorm's through logs),
    times Φ⁻¹'s slope 1/φ(θ) ≤ 1/φ(1/√2) ≈ 3.2; 8ε allowed, the largest seen here is 2.6ε."""
    from scipy.stats import truncnorm

    for bias in ("node", "vector"):
        spec = Spec((16, *range(1, 17), 3), ("sigmoid",) * 17, bias=bias)
        drawn = truncated_normal(spec, np.random.default_rng(7))
        rng = np.random.default_rng(7)
        for name, values in drawn.items():
            bound = 1 / np.sqrt(spec.sizes[int(name[1:]) - 1] + 1)
            expected = truncnorm(-bound, bound).rvs(size=values.shape, random_state=rng)
            np.testing.assert_allclose(values, expected, rtol=0, atol=8 * np.finfo(float).eps,
                                       err_msg=f"{bias} {name}")
            assert np.abs(values).max() <= bound
