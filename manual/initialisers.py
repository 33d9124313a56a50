"""The seed program's initialisation: truncated normal weights."""

from __future__ import annotations

import numpy as np

from manual.spec import Params, Spec, param_shapes


def truncated_normal(spec: Spec, rng: np.random.Generator) -> Params:
    r"""θ ~ N(0, 1) truncated to ±1/√(fan_in + 1), fan_in = the layer's input width.

    The +1 counts the bias node (the seed's convention); bias vectors use the same bound.
    """
    from scipy.stats import truncnorm  # scipy.stats takes ~1 s to import: only when used

    params: Params = {}
    for name, shape in param_shapes(spec).items():
        fan_in = spec.sizes[int(name[1:]) - 1]
        bound = 1.0 / np.sqrt(fan_in + 1)
        values = truncnorm(-bound, bound, loc=0.0, scale=1.0).rvs(size=shape, random_state=rng)
        params[name] = np.asarray(values, dtype=spec.dtype).reshape(shape)
    return params
