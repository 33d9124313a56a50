"""The custom layers' own tests, with bpcheck's pytest fixture."""

from custom_layers import rms_norm, rms_norm_slip


def test_rms_norm_matches_autodiff(bpcheck):
    bpcheck.assert_agrees(rms_norm)


def test_the_slip_is_caught_on_its_input_gradient(bpcheck):
    report = bpcheck.check(rms_norm_slip)
    assert not report.passed
    assert "x" in report.message and "not the gradient of your own forward" in report.message
