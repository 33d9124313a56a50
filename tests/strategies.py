"""Every Hypothesis strategy of the suite: networks (specs) and problems to evaluate them on.

Sizes are capped (widths 1–16, batch 1–8) so Hypothesis shrinks a failure to the smallest
network that shows it. Values are finite and bounded: each layer's weights and biases within
the seed program's initialisation range ±1/√(fan_in + 1), inputs in [−2, 2], targets in
[0, 1], η in [1e−3, 1]. That keeps most pre-activations where float64 autodiff is itself
accurate (see ``study.tolerances``); saturation has dedicated tests.
"""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from manual.spec import ACTIVATIONS, BIAS_STYLES, LAYOUTS, Spec, data_shape, param_shapes
from study.compare import Problem

MAX_WIDTH, MAX_BATCH = 16, 8
INPUT_BOUND = 2.0

#: Every (hidden, output) activation pair, for parametrising tests over the registry.
ACTIVATION_PAIRS = list(itertools.product(ACTIVATIONS, repeat=2))


def bounded(low: float, high: float, dtype: str) -> st.SearchStrategy[float]:
    """Finite floats in [low, high] exactly representable in dtype, no subnormals."""
    low, high = (float(np.dtype(dtype).type(bound)) for bound in (low, high))
    return st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False,
                     width=np.dtype(dtype).itemsize * 8)


def array(shape: tuple[int, ...], low: float, high: float, dtype: str) -> st.SearchStrategy:
    return hnp.arrays(np.dtype(dtype), shape, elements=bounded(low, high, dtype))


@st.composite
def specs(draw, activations: tuple[str, str] | None = None, bias: str | None = None,
          layout: str | None = None, dtype: str = "float64", reduction: str = "sum") -> Spec:
    """A seed-shaped network F → H → C with the given (or drawn) conventions."""
    sizes = tuple(draw(st.integers(1, MAX_WIDTH)) for _ in range(3))
    return Spec(
        sizes=sizes,
        activations=activations or tuple(draw(st.sampled_from(ACTIVATIONS)) for _ in range(2)),
        reduction=reduction,
        bias=bias or draw(st.sampled_from(BIAS_STYLES)),
        layout=layout or draw(st.sampled_from(LAYOUTS)),
        dtype=dtype,
    )


def weight_bound(spec: Spec, name: str) -> float:
    """±1/√(fan_in + 1) for every parameter of layer k (``W{k}`` or ``b{k}``)."""
    return 1.0 / float(np.sqrt(spec.sizes[int(name[1:]) - 1] + 1))


@st.composite
def problems(draw, spec_strategy: st.SearchStrategy[Spec] | None = None) -> Problem:
    """A spec with parameters, a batch, targets and a learning rate, all in the spec's dtype."""
    spec = draw(specs() if spec_strategy is None else spec_strategy)
    n = draw(st.integers(1, MAX_BATCH))
    params = {}
    for name, shape in param_shapes(spec).items():
        bound = weight_bound(spec, name)
        params[name] = draw(array(shape, -bound, bound, spec.dtype))
    X = draw(array(data_shape(spec, spec.sizes[0], n), -INPUT_BOUND, INPUT_BOUND, spec.dtype))
    Y = draw(array(data_shape(spec, spec.sizes[-1], n), 0.0, 1.0, spec.dtype))
    lr = draw(st.floats(1e-3, 1.0))
    return Problem(spec, params, X, Y, lr)
