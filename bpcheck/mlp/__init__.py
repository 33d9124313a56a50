"""The MLP family: problems, witnesses' allowances, strategies, diagnosis, mutants, training."""
