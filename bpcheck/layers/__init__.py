"""Networks of layers and sequence models: the same parts as ``bpcheck.mlp``, for stacks."""
