"""Users' own code: activations, losses, rules and layers, their guards and ``check()``."""
