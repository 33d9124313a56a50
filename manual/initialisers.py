"""The seed program's initialisation: truncated normal weights."""

from __future__ import annotations

import numpy as np

from manual.spec import Params, Spec, param_shapes


def truncated_normal(spec: Spec, rng: np.random.Generator) -> Params:
    r"""θ ~ N(0, 1) truncated to ±b, b = 1/√(fan_in + 1), fan_in = the layer's input width.

    The +1 counts the bias node (the seed's convention); bias vectors use the same bound. From
    the same uniforms as the seed's ``scipy.stats.truncnorm(−b, b).rvs`` and equal to it up to
    rounding: the inverse CDF θ = Φ⁻¹(Φ(−b) + u·(Φ(b) − Φ(−b))), u ~ U[0, 1) from ``rng``, with
    scipy.special's Φ and Φ⁻¹ (b ≤ 1/√2 keeps Φ away from its tails), since importing
    scipy.stats takes ~0.8 s.
    """
    from scipy.special import ndtr, ndtri  # not with this module: the commands' --help loads it

    params: Params = {}
    for name, shape in param_shapes(spec).items():
        b = 1.0 / np.sqrt(spec.sizes[int(name[1:]) - 1] + 1)
        low, high = ndtr(-b), ndtr(b)
        values = ndtri(low + rng.uniform(size=shape) * (high - low))
        params[name] = np.asarray(values, dtype=spec.dtype).reshape(shape)
    return params
