"""`bpcheck report` and `bpcheck sweep`: self-contained files, plots rendered at their size."""

from __future__ import annotations

import base64
import io
import re

from matplotlib.image import imread

from tests.assertions import run_cli


def embedded_images(text: str) -> list:
    return [imread(io.BytesIO(base64.b64decode(data)), format="png")
            for data in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)]


def test_report_writes_self_contained_html_and_markdown(tmp_path):
    page, notes = tmp_path / "seed.html", tmp_path / "seed.md"
    run_cli(["report", "seed-literal", "--html", str(page), "--markdown", str(notes), "--epochs", "2"], 0)
    for path in (page, notes):
        text = path.read_text(encoding="utf-8")
        for heading in ("Comparison with the witnesses", "Diagnosis", "Sweep plot", "Training curves"):
            assert heading in text
        assert "σ′ of layer 2 (sigmoid) missing" in text and "DIFFERS" in text
        images = embedded_images(text)
        assert len(images) == 2  # the sweep and the training curves
        assert images[0].shape[:2] == (360, 1500) and images[1].shape[:2] == (420, 1100)
        assert all(image.std() > 0 for image in images)
    assert re.search(r"\| max \\\|err\\\| \|", notes.read_text(encoding="utf-8"))
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_sweep_writes_its_table_and_plot(tmp_path):
    plot = tmp_path / "sweep.png"
    out = run_cli(["sweep", "stale-weights", "--repeats", "1", "--out", str(plot)], 0)
    assert "lr" in out and "depth" in out
    assert imread(plot).shape[:2] == (360, 1500)


def test_report_and_sweep_refuse_unknown_rules(tmp_path):
    assert "unknown rule 'nope'; expected one of derived" in run_cli(
        ["report", "nope", "--html", str(tmp_path / "x.html")], 2)
    assert "unknown rule 'nope'" in run_cli(["sweep", "nope"], 2)
    assert "give --html PATH or --markdown PATH" in run_cli(["report", "derived"], 2)
    assert "argument --repeats: must be an integer from 1 to 1000, got 0" in run_cli(
        ["sweep", "derived", "--repeats", "0"], 2)
    assert not (tmp_path / "x.html").exists()


def test_report_on_a_dead_network_shows_inconclusive_rows_and_diagnoses_nothing(tmp_path):
    """Iris at seed 0 leaves every output relu dead: rows read inconclusive (not DIFFERS), and
    the diagnosis says why instead of explaining a difference that is not there."""
    notes = tmp_path / "dead.md"
    run_cli(["report", "derived", "--layers", "4,8,3", "--activations", "tanh,relu", "--bias", "vector",
             "--layout", "rows", "--reduction", "mean", "--markdown", str(notes), "--epochs", "1"], 0)
    text = notes.read_text(encoding="utf-8")
    assert "| inconclusive |" in text and "| DIFFERS |" not in text
    assert "inconclusive here, nothing to explain: nothing flows back: every unit of layer 2" in text


NETWORK = ["--network", "conv2d:2,k3,p1;relu;max_pool2d:k2;flatten;dense:10"]


def test_sweep_of_a_layer_mutant_on_a_network_shows_its_error_at_every_setting(tmp_path):
    """A layer mutant is swept over the network's dtype, batch and input scale: its error is
    O(1) everywhere, the derived layers' is rounding (≤ 1e-6 in float32, 1e-13 in float64)."""
    plot = tmp_path / "sweep.png"
    wrong = run_cli(["sweep", "conv_flipped_kernel", *NETWORK, "--repeats", "1", "--out", str(plot)], 0)
    right = run_cli(["sweep", "derived", *NETWORK, "--repeats", "1", "--out", str(plot)], 0)
    assert imread(plot).shape[:2] == (360, 900)  # three panels
    for out, low, high in ((wrong, 1e-3, 10.0), (right, 0.0, 1e-6)):
        errors = [float(e) for e in re.findall(r"(?:dtype|batch|scale)\s+\S+\s+(\S+)\s", out)]
        assert len(errors) == 9 and all(low < e < high for e in errors), out
    float64 = re.search(r"dtype\s+float64\s+(\S+)", right)
    assert float(float64.group(1)) < 1e-13


def test_sweep_and_report_refuse_a_mutant_the_network_lacks_and_a_misspelt_one(tmp_path):
    assert "rnn_bptt_one_step is not defined on this network: the network has no rnn layer" in run_cli(
        ["sweep", "rnn_bptt_one_step", *NETWORK], 2)
    out = run_cli(["report", "conv_flipped", *NETWORK, "--markdown", str(tmp_path / "r.md")], 2)
    assert "unknown rule 'conv_flipped' for --network (did you mean 'conv_flipped_kernel'" in out
    assert "--layers describes an MLP" in run_cli(
        ["report", "derived", *NETWORK, "--layers", "4,3", "--markdown", str(tmp_path / "r.md")], 2)
    assert "unknown rule 'sign-flp' (did you mean 'sign-flip'?)" in run_cli(["sweep", "sign-flp"], 2)
    assert not (tmp_path / "r.md").exists()


def test_report_on_a_network_compares_diagnoses_sweeps_and_trains_on_digits(tmp_path):
    notes = tmp_path / "conv.md"
    run_cli(["report", "max_pool_spread", *NETWORK, "--markdown", str(notes), "--epochs", "2"], 0)
    text = notes.read_text(encoding="utf-8")
    assert "| x 8×1×8×8 | gradient | torch |" in text and "| DIFFERS |" in text
    assert "| pool1 (max_pool2d) | x |" in text and "the whole window" in text
    assert "| scale | 10.0 |" in text and "## Training on digits (2 epochs" in text
    assert "| max_pool_spread | 0.3 |" in text
    assert len(embedded_images(text)) == 2
