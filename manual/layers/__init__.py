"""Hand-derived layers beyond the dense one, each a pure cs231n-style pair:

``forward(x, params, layer) → (out, cache)`` and ``backward(dout, cache) → (dx, grads)``,
``grads`` keyed by the parameter's short name (``W``, ``b``, ``gamma``, ``beta``). NumPy only;
every shape and the derivation sit in each function's docstring. ``manual.stack`` describes
the networks built from them and ``manual.stack_network`` runs them.
"""
