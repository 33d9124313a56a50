from online_network import backprop_rule


def test_backprop_matches_autodiff(bpcheck):
    bpcheck.assert_agrees(backprop_rule)
