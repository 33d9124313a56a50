"""Every Hypothesis strategy of the suite: networks (specs), problems, and the kink filter.

Sizes are capped (1–6 hidden layers, widths 1–16, batch 1–8) so Hypothesis shrinks a failure to
the smallest network that shows it. Arrays are drawn from a seed, one choice each (entry by
entry, the draws took half of an MLP test's time and shrank a network less far:
``bench/draws.py``). Values are finite and bounded:
each layer's weights and biases within the seed program's initialisation range
±1/√(fan_in + 1), inputs with 0.01 ≤ |x| ≤ 2,
targets in [−1, 1] (values), [0, 1] (probabilities) or {0 … C−1} (labels), η in [1e−3, 1].
That keeps most pre-activations where float64 autodiff is itself accurate (see
``bpcheck.core.tolerances``); saturation has dedicated tests. Pre-activations keep
KINK_MARGIN_ABSOLUTE from every kink by construction: each bias is moved just enough
(``clear_of_kinks``), so the kink filter ``away_from_kinks`` rejects almost nothing.
"""

from __future__ import annotations

import functools

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bpcheck.mlp.problem import Problem
from manual import seed
from manual.spec import (
    ACTIVATIONS,
    BIAS_STYLES,
    LAYOUTS,
    LOSSES,
    REDUCTIONS,
    Spec,
    data_shape,
    param_shapes,
    parse_activation,
    target_kind,
)
from reference import numeric

#: the widest layer, the largest batch (samples N) and the most hidden layers of an MLP problem
MAX_WIDTH, MAX_MLP_BATCH, MAX_HIDDEN_LAYERS = 16, 8, 6
INPUT_BOUND = 2.0
#: Inputs keep |x| ≥ this: an all-zero batch makes ∂L/∂W1 all zero with bias vectors, a zero
#: compared exactly (``bpcheck.core.tolerances.conclusive``) that no error scaling δ₁ can move.
INPUT_SMALLEST = 1e-2
#: Parameters drawn besides the default, for activations that take one (leaky_relu's slope).
PARAMETERS = (0.01, 0.2, 1.5)
#: How far test pre-activations keep from an activation's kinks (its record's ``kinks``):
#: finite differences step ≲ 1e−5, float32 rounds z by ≲ 1e−5, XLA flushes subnormals to zero.
KINK_MARGIN_ABSOLUTE = 1e-2
#: ``clear_of_kinks`` moves pre-activations to this distance at least, a little beyond
#: KINK_MARGIN_ABSOLUTE, so that rounding the moved bias to float32 cannot undo it.
KINK_CLEARANCE = 1.125 * KINK_MARGIN_ABSOLUTE


def hidden_activations() -> list[str]:
    return [name for name, record in ACTIVATIONS.items() if not record.output_only]


@functools.cache
def bounded(low: float, high: float, dtype: str) -> st.SearchStrategy[float]:
    """Finite floats in [low, high] exactly representable in dtype, no subnormals."""
    low, high = (float(np.dtype(dtype).type(bound)) for bound in (low, high))
    return st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False,
                     width=np.dtype(dtype).itemsize * 8)


#: Seeded arrays are cut from one of at least this many entries a side, so that an array one row
#: or column smaller (a layer one unit narrower, a batch one sample shorter) keeps the values of
#: the entries it keeps: shrinking a network leaves the rest of the failure as it was.
SEEDED_SIDE = MAX_WIDTH + 1


@functools.cache
def array(shape: tuple[int, ...], low: float, high: float, dtype: str,
          smallest: float = 0.0) -> st.SearchStrategy[np.ndarray]:
    """Entries in [low, high] with |x| ≥ ``smallest`` (then [low, high] is symmetric), from a
    seed Hypothesis draws (``seeded_array``): one choice for the whole array."""
    return st.integers(0, 2**32 - 1).map(lambda seed: seeded_array(seed, shape, low, high, dtype, smallest))


def seeded_corner(shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[slice, ...]]:
    """(the shape a seeded array is drawn at, SEEDED_SIDE a side at least; the index of
    ``shape``'s leading corner in it)."""
    return tuple(max(SEEDED_SIDE, side) for side in shape), tuple(slice(side) for side in shape)


def seeded_array(seed: int, shape: tuple[int, ...], low: float, high: float, dtype: str,
                 smallest: float = 0.0) -> np.ndarray:
    """Uniform in [low, high], or ±uniform in [smallest, high] with ``smallest``, rounded to
    dtype and kept within the bounds as ``bounded`` rounds them: the leading corner of an
    array SEEDED_SIDE or more a side drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    whole, corner = seeded_corner(shape)
    if smallest:
        values = rng.choice([-1.0, 1.0], whole) * rng.uniform(smallest, high, whole)
    else:
        values = rng.uniform(low, high, whole)
    values = values[corner]
    lowest, highest = (np.dtype(dtype).type(bound) for bound in (low, high))
    return np.clip(values.astype(dtype), lowest, highest)


def activation_names(base: str) -> st.SearchStrategy[str]:
    """``base``, or ``base:<parameter>`` for activations that take one."""
    return _activation_names(base, ACTIVATIONS[base].parameter is None)


@functools.cache
def _activation_names(base: str, plain: bool) -> st.SearchStrategy[str]:
    """One strategy object per name: Hypothesis validates a strategy the first time it draws
    from it, so one built anew at every draw was validated at every draw (with the tuples
    ``specs`` passes to ``sampled_from``, an MLP problem draws in 4.7–4.9 ms, not 5.3–5.5)."""
    if plain:
        return st.just(base)
    return st.sampled_from((None, *PARAMETERS)).map(lambda p: base if p is None else f"{base}:{p}")


#: Targets that are one and the same for one class (label 0, the one-hot [1], the distribution
#: [1]): a network with one output would check a loss on a constant.
ONE_CLASS_CONSTANT = ("labels", "one_hot", "distributions")


@st.composite
def specs(draw, activations: tuple[str, ...] | None = None, include: str | None = None,
          loss: str | None = None, depth: int | None = None, bias: str | None = None,
          layout: str | None = None, dtype: str = "float64", reduction: str | None = None,
          l2: float | None = None, max_hidden_layers: int = MAX_HIDDEN_LAYERS,
          width: int | None = None, l2_biases: bool | None = None) -> Spec:
    """A network; anything not given is drawn. ``include`` forces one layer's activation;
    ``width`` makes every layer that wide; ``l2_biases`` is drawn only with a penalty (λ > 0),
    else it is False."""
    loss = loss or draw(st.sampled_from(tuple(LOSSES)))  # a tuple: Hypothesis reuses the strategy
    if activations is None:
        depth = depth or draw(st.integers(2, max_hidden_layers + 1))
        names = [draw(activation_names(draw(st.sampled_from(tuple(hidden_activations())))))
                 for _ in range(depth)]
        outputs = LOSSES[loss].probability_outputs or list(ACTIVATIONS)
        names[-1] = draw(activation_names(draw(st.sampled_from(tuple(outputs)))))
        if include is not None:  # the output if it must or may, else a hidden layer
            at_output = ACTIVATIONS[include].output_only or (include in outputs and draw(st.booleans()))
            at = depth - 1 if at_output else draw(st.integers(0, depth - 2))
            names[at] = draw(activation_names(include))
        activations = tuple(names)
    sizes = [width or draw(st.integers(1, MAX_WIDTH)) for _ in range(len(activations) + 1)]
    output = ACTIVATIONS[parse_activation(activations[-1])[0]]
    if output.across_outputs or LOSSES[loss].across_outputs or target_kind(loss) in ONE_CLASS_CONSTANT:
        # one output: every gradient zero, or the targets the same in every draw
        sizes[-1] = max(sizes[-1], 2) if width is None else width
    sizes = tuple(sizes)
    reduction = reduction or draw(st.sampled_from(REDUCTIONS))
    bias = bias or draw(st.sampled_from(BIAS_STYLES))
    layout = layout or draw(st.sampled_from(LAYOUTS))
    l2 = draw(st.sampled_from((0.0, 0.0, 0.25))) if l2 is None else l2
    if l2_biases is None:
        l2_biases = draw(st.booleans()) if l2 > 0 else False
    return Spec(
        sizes=sizes, activations=activations, loss=loss,
        reduction=reduction, bias=bias, layout=layout, dtype=dtype, l2=l2, l2_biases=l2_biases,
    )


def seed_program_specs(activations: tuple[str, str] | None = None, **conventions) -> st.SearchStrategy[Spec]:
    """The seed program's family: one hidden layer, the activations and loss it has (sigmoid,
    tanh, relu; ½ squared error summed)."""
    pair = st.tuples(*[st.sampled_from(list(seed.TIMES_DERIVATIVE_FROM_OUTPUT))] * 2)
    return (st.just(activations) if activations else pair).flatmap(
        lambda names: specs(names, loss=seed.LOSS, reduction="sum", l2=0.0, **conventions))


def weight_bound(spec: Spec, name: str) -> float:
    """±1/√(fan_in + 1) for every parameter of layer k (``W{k}`` or ``b{k}``)."""
    return 1.0 / float(np.sqrt(spec.sizes[int(name[1:]) - 1] + 1))


def targets(spec: Spec, n: int) -> st.SearchStrategy[np.ndarray]:
    """Targets of the kind the spec's loss takes (``manual.vocabulary.TARGET_KINDS``): values in
    [−1, 1], probabilities in [0, 1], distributions (entries in [1/20, 1] over their sample's
    sum), one-hot rows or columns of random classes, or labels."""
    kind, classes = target_kind(spec.loss), spec.sizes[-1]
    labels = hnp.arrays(np.int64, (n,), elements=st.integers(0, classes - 1))
    if kind == "labels":
        return labels
    if kind == "one_hot":
        return labels.map(lambda y: in_layout(spec, np.eye(classes, dtype=spec.dtype)[y]))
    if kind == "distributions":
        positive = array(data_shape(spec, classes, n), 0.05, 1.0, spec.dtype)
        return positive.map(lambda y: as_distributions(spec, y))
    low = -1.0 if kind == "values" else 0.0
    return array(data_shape(spec, classes, n), low, 1.0, spec.dtype)


def in_layout(spec: Spec, rows: np.ndarray) -> np.ndarray:
    """(N, C) targets in the spec's layout: as they are (rows) or transposed (cols)."""
    return np.ascontiguousarray(rows if spec.layout == "rows" else rows.T)


def as_distributions(spec: Spec, y: np.ndarray) -> np.ndarray:
    """Positive targets over their sample's sum (the outputs' axis of the layout), in float64
    then rounded: each sample's sum to one up to C roundings."""
    axis = 0 if spec.layout == "cols" else -1
    wide = np.asarray(y, np.float64)
    return (wide / wide.sum(axis=axis, keepdims=True)).astype(spec.dtype)


@st.composite
def problems(draw, spec_strategy: st.SearchStrategy[Spec] | None = None) -> Problem:
    """A spec with parameters, a batch, targets and a learning rate, all in the spec's dtype."""
    spec = draw(specs() if spec_strategy is None else spec_strategy)
    n = draw(st.integers(1, MAX_MLP_BATCH))
    params = {}
    for name, shape in param_shapes(spec).items():
        bound = weight_bound(spec, name)
        params[name] = draw(array(shape, -bound, bound, spec.dtype))
    X = draw(array(data_shape(spec, spec.sizes[0], n), -INPUT_BOUND, INPUT_BOUND, spec.dtype,
                   smallest=INPUT_SMALLEST))
    lr = draw(st.floats(1e-3, 1.0))
    return Problem(spec, clear_of_kinks(spec, params, X), X, draw(targets(spec, n)), lr)


def clear_of_kinks(spec: Spec, params: dict[str, np.ndarray], X: np.ndarray) -> dict[str, np.ndarray]:
    """The parameters with each bias moved, layer by layer, so that every pre-activation of its
    unit keeps at least KINK_CLEARANCE from its activation's kinks. With m = KINK_CLEARANCE,
    a shift d is forbidden in (c − z_n − m, c − z_n + m) for every sample n and kink c; the
    candidates are 0 and c − z_n ± 1.25·KINK_MARGIN_ABSOLUTE, and the unit takes the smallest allowed
    one that keeps the bias within its layer's bound (in the dtype) — ties upward, so a unit
    drawn exactly on relu's kink is moved live, not dead. A unit with no such candidate keeps
    its bias (``away_from_kinks`` then rejects the draw). A moved bias moves every later
    layer's input, hence layer by layer."""
    params = {name: value.copy() for name, value in params.items()}
    for k, name in enumerate(spec.activations, start=1):
        kinks = np.sort(ACTIVATIONS[parse_activation(name)[0]].kinks)
        if not kinks.size:
            continue
        z = numeric.preactivations(spec, {key: np.asarray(v, np.float64) for key, v in params.items()},
                                   np.asarray(X, np.float64))[k - 1]  # samples × units
        key, column = (f"W{k}", np.s_[:, -1]) if spec.bias == "node" else (f"b{k}", np.s_[:])
        bias = params[key][column].astype(np.float64)
        bound = float(np.dtype(spec.dtype).type(weight_bound(spec, key)))  # as ``bounded`` drew it
        ends = (kinks[:, None, None] - z[None] + np.array([1, -1])[:, None, None, None]
                * 1.25 * KINK_MARGIN_ABSOLUTE).reshape(-1, z.shape[1])  # (2·kinks·samples, units), + first
        shifts = np.concatenate([np.zeros((1, z.shape[1])), ends])
        clear = np.min(_distance_to(kinks, z[None] + shifts[:, None, :]), axis=1) >= KINK_CLEARANCE
        clear &= np.abs(bias + shifts) <= bound
        best = np.argmin(np.where(clear, np.abs(shifts), np.inf), axis=0)
        shift = np.where(clear.any(axis=0), shifts[best, np.arange(z.shape[1])], 0.0)
        params[key][column] = np.clip(bias + shift, -bound, bound).astype(params[key].dtype)
    return params


def _distance_to(kinks: np.ndarray, values: np.ndarray) -> np.ndarray:
    """|v − nearest kink| for each value, ``kinks`` sorted (memory linear in their number)."""
    at = np.searchsorted(kinks, values)
    below, above = kinks[np.maximum(at - 1, 0)], kinks[np.minimum(at, kinks.size - 1)]
    return np.minimum(np.abs(values - below), np.abs(values - above))


def away_from_kinks(problem: Problem) -> bool:
    """True when every pre-activation is at least KINK_MARGIN_ABSOLUTE from its activation's kinks."""
    p = problem.in_float64()
    zs = numeric.preactivations(p.spec, p.params, p.X)
    return all(np.min(np.abs(z - kink)) >= KINK_MARGIN_ABSOLUTE
               for z, name in zip(zs, p.spec.activations, strict=True)
               for kink in ACTIVATIONS[parse_activation(name)[0]].kinks)
