"""The one-forward examples' own tests, with bpcheck's pytest fixture."""

from one_forward import huber, my_elu, nll, rms_norm, rms_norm_slip, swish_gate, swish_gate_slip


def test_rms_norm_written_once_matches_autodiff(bpcheck):
    bpcheck.assert_agrees(rms_norm)


def test_its_slip_is_caught(bpcheck):
    assert not bpcheck.check(rms_norm_slip).passed


def test_the_numpy_only_gate_matches_its_own_finite_differences(bpcheck):
    report = bpcheck.assert_agrees(swish_gate)
    assert "no autodiff witness" in report.message
    assert not bpcheck.check(swish_gate_slip).passed


def test_the_activation_and_losses_match_autodiff(bpcheck):
    for rule in (my_elu, huber, nll):
        bpcheck.assert_agrees(rule)
