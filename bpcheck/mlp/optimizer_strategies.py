"""Hypothesis strategies for optimizer trajectories: settings by name and (θ_0, [g_1 … g_T])."""

from __future__ import annotations

import functools

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bpcheck.mlp.strategies import seeded_corner
from manual import optim

#: Trajectories of 1–30 steps; parameter arrays of rank 1–2, sides 1–5; entries 0 or
#: 1e−3 ≤ |x| ≤ 2 (parameters) or 10 (gradients): tinier values send g², λθ and the moments
#: below the normal range, where XLA flushes to zero and a division by ε magnifies the loss.
MAX_STEPS = 30


def _rate(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


def _powers_of_ten(low: int, high: int) -> st.SearchStrategy[float]:
    return st.integers(low, high).map(lambda e: 10.0**e)


def _zero_or(low: float, high: float) -> st.SearchStrategy[float]:
    return st.one_of(st.just(0.0), _rate(low, high))


#: What the tests draw for each setting, by its name (the same meaning in every optimizer):
#: realistic ranges; a setting drawn from the others' values is a function of them. Centered
#: RMSProp keeps α ≥ 0.9, since its denominator √(v − m²) can shrink to α^{t/2}√v and smaller α
#: would leave float32 nothing to compare. Flags the record's ``requires`` refuses together
#: (Nesterov without momentum) are put back to their defaults. A setting not named here is
#: drawn from its domain (``_by_domain``), so a new optimizer needs no edit here.
SETTING_DRAWS = {
    "lr": _rate(1e-4, 1.0), "weight_decay": _zero_or(1e-4, 0.1), "eps": _powers_of_ten(-10, -3),
    "momentum": _zero_or(0.1, 0.99), "dampening": _zero_or(0.1, 0.9), "lr_decay": _zero_or(1e-3, 0.1),
    "initial_accumulator_value": _zero_or(0.01, 1.0), "centered": st.booleans(),
    "beta1": _rate(0.0, 0.99), "beta2": _rate(0.5, 0.9999), "eps_root": st.sampled_from([0.0, 1e-8]),
    "eps_placement": st.sampled_from(["outside", "inside"]),
    "alpha": lambda hp: _rate(0.9, 0.999) if hp.get("centered") else _rate(0.5, 0.999),
    "nesterov": st.booleans(),
}


def _by_domain(setting: optim.Setting) -> st.SearchStrategy:
    """A setting no entry of SETTING_DRAWS names (a new optimizer's), drawn from its domain."""
    if setting.switch:
        return st.sampled_from(setting.domain)
    return {optim.FLAG: st.booleans(), optim.UNIT_INTERVAL: _rate(0.0, 0.99),
            optim.POSITIVE: _powers_of_ten(-10, -3)}.get(setting.domain, _zero_or(1e-4, 1.0))


@st.composite
def optimizer_hyperparameters(draw, name: str, framework: str) -> dict:
    """Every setting of the optimizer's record, keyed by its name, drawn where ``framework``
    can express more than one value (``reference.optim_ref.fixed``) and fixed where not."""
    from reference.optim_ref import fixed  # torch, jax and optax load when an optimizer is drawn

    rule, pinned = optim.optimizer(name), fixed(framework, name)
    hp: dict = {key: pinned[key] for key in rule.settings if key in pinned}
    free = [key for key in rule.settings if key not in hp]  # the record's order: reproducible
    for key in sorted(free, key=lambda key: callable(SETTING_DRAWS.get(key))):
        strategy = SETTING_DRAWS[key] if key in SETTING_DRAWS else _by_domain(rule.settings[key])
        hp[key] = draw(strategy(hp) if callable(strategy) else strategy)
    if rule.requires(hp) is not None:
        hp.update({key: s.default for key, s in rule.settings.items() if s.domain == optim.FLAG})
    return {key: hp[key] for key in rule.settings}


@functools.cache
def _optimizer_array(shape: tuple[int, ...], dtype: str, largest: float) -> st.SearchStrategy[np.ndarray]:
    """Entries 0 or 1e−3 ≤ |x| ≤ ``largest``, from a seed (``_seeded_entries``)."""
    return st.integers(0, 2**32 - 1).map(lambda seed: _seeded_entries(seed, shape, dtype, largest))


def _seeded_entries(seed: int, shape: tuple[int, ...], dtype: str, largest: float) -> np.ndarray:
    """0 at a share of the entries (none, a quarter or nine in ten, as the seed picks), the
    others ±10^u, u uniform in [−3, log₁₀ largest]: every scale in between alike. Cut from
    a larger array as ``bpcheck.mlp.strategies.seeded_array`` is, so that shrinking a shape keeps
    the values of the entries it keeps."""
    rng = np.random.default_rng(seed)
    whole, corner = seeded_corner(shape)
    zero = rng.uniform(size=whole) < rng.choice([0.0, 0.25, 0.9])
    values = rng.choice([-1.0, 1.0], whole) * 10.0 ** rng.uniform(-3, np.log10(largest), whole)
    values = np.where(zero, 0.0, np.clip(values, -largest, largest))
    return values[corner].astype(dtype)


@st.composite
def optimizer_problems(draw, dtype: str = "float64", max_steps: int = MAX_STEPS):
    """(θ_0, [g_1 … g_T]): 1–3 parameter arrays and T gradients, values exact in ``dtype``."""
    shapes = draw(st.lists(hnp.array_shapes(min_dims=1, max_dims=2, max_side=5), min_size=1,
                           max_size=3))
    params = {f"p{i}": draw(_optimizer_array(shape, dtype, 2.0)) for i, shape in enumerate(shapes)}
    steps = draw(st.integers(1, max_steps))
    grads = [{key: draw(_optimizer_array(value.shape, dtype, 10.0)) for key, value in params.items()}
             for _ in range(steps)]
    return params, grads
