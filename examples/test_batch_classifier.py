from batch_classifier import classifier_rule


def test_gradients_match_autodiff(bpcheck):
    bpcheck.assert_agrees(classifier_rule)


def test_gradients_match_autodiff_in_float32(bpcheck):
    bpcheck.assert_agrees(classifier_rule, dtype="float32")
