from trainer_class import trainer_rule


def test_one_training_step_matches_autodiff(bpcheck):
    bpcheck.assert_agrees(trainer_rule)
