r"""Your activation's formula against its witnesses: rounding, or a different function?

A correct float formula for f differs from the exact f by its roundings — in its result and in
its intermediates. ``np.exp(z) - 1`` near 0, ``np.log(np.exp(z) + 1)`` for z ≪ 0 and
``2 / (1 + np.exp(-2 * z)) - 1`` near 0 subtract numbers of size ~1 to get a small one: their
*absolute* error is u·(size of the intermediates), not u·|f|. In a network such an error is
added to values of the function's own scale (the other units of the layer), so it is judged
against that scale: a formula whose value or derivative is within

.. math::
    A(z) = P·u·(|f(z)| + |z·f′(z)| + S_f),\quad P = SAFETY·ROUNDINGS_PER_VALUE = 32,

of the witnesses' (S_f = max |f| over the grid's |z| ≤ 10, ``function_scale``; for the
derivative f′, |z f″| dropped and S_{f′}) computes the right function, and where it is further
from them than a correct formula's own rounding (``bpcheck.user.elementwise``'s allowance) it earns
a *precision note* with the remedy, never WRONG. A wrong formula — off by 1e−4 relative, say —
is caught wherever |f| > 1e−10·S_f, i.e. everywhere but the far tails.

Inside networks the witnesses then use your value and derivative wherever they are within A of
their own (``anchored_torch``, ``anchored_jax``): the networks judge the backward pass built on
your activation, not the rounding of its formula, which the grid has judged already. Where your
value or derivative is further off, the witnesses keep their own, and the networks differ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bpcheck.core.tolerances import ROUNDINGS_PER_VALUE, SAFETY, unit_roundoff

#: Factor over one rounding of the function's scale: SAFETY over R roundings behind a value.
PRECISION = SAFETY * ROUNDINGS_PER_VALUE
#: Where the function's scale is taken, and the grid an activation is compared on
#: (``bpcheck.user.elementwise.GRID``): |z| ≤ 10, where the networks draw pre-activations, 801 points.
SCALE_GRID = np.linspace(-10.0, 10.0, 801)


@dataclass(frozen=True)
class Scale:
    """S_f and S_{f′}: the largest |f| and |f′| of the witness's forward over |z| ≤ 10."""

    value: float
    derivative: float


def function_scale(f: np.ndarray, f1: np.ndarray) -> Scale:
    """S_f = max |f|, S_{f′} = max |f′| of values on a grid (infinite ones count as nothing)."""
    return Scale(_largest(f), _largest(f1))


def torch_scale(torch_forward: Callable) -> Scale:
    """The function's scale from a torch forward and its autodiff on SCALE_GRID."""
    import torch

    at = torch.tensor(SCALE_GRID[None, :], requires_grad=True)
    value = torch_forward(at)
    (slope,) = torch.autograd.grad(value.sum(), at)
    return function_scale(value.detach().numpy(), slope.numpy())


def _largest(values: np.ndarray) -> float:
    finite = np.abs(np.asarray(values, np.float64))
    return float(np.max(finite, where=np.isfinite(finite), initial=0.0))


def value_allowance(z: np.ndarray, f: np.ndarray, f1: np.ndarray, scale: Scale, dtype) -> np.ndarray:
    """A_f(z) = P·u·(|f| + |z f′| + S_f): how far a correct formula's value may be from f."""
    with np.errstate(invalid="ignore", over="ignore"):
        return PRECISION * unit_roundoff(dtype) * (np.abs(f) + np.abs(z * f1) + scale.value)


def derivative_allowance(f1: np.ndarray, scale: Scale, dtype) -> np.ndarray:
    """A_{f′}(z) = P·u·(|f′| + S_{f′}): how far a correct formula's derivative may be from f′."""
    return PRECISION * unit_roundoff(dtype) * (np.abs(f1) + scale.derivative)


def anchor(yours: np.ndarray, theirs: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Yours where within ``allowed`` of theirs (rounding of a correct formula), else theirs."""
    yours = np.asarray(yours, np.float64)
    with np.errstate(invalid="ignore"):
        close = np.abs(yours - theirs) <= allowed
    return np.where(close, yours, theirs)


def anchored_values(rule, z: np.ndarray, f: np.ndarray, f1: np.ndarray, scale: Scale,
                    units_last: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(value, derivative) a witness uses at z: yours where within A of its own f and f′.
    Your code sees z in its own dtype as (units, samples); a witness's (…, samples, units)
    z (``units_last``) is turned to that and back."""
    as_user = z.reshape(-1, z.shape[-1]).T if units_last and z.ndim > 1 else z
    value = np.asarray(rule.value(as_user.copy()), np.float64)
    derivative = np.asarray(rule.derivative(as_user.copy(), value.copy()), np.float64)
    if units_last and z.ndim > 1:
        value, derivative = value.T.reshape(z.shape), derivative.T.reshape(z.shape)
    wide = np.asarray(z, np.float64)
    return (anchor(value, f, value_allowance(wide, f, f1, scale, z.dtype)),
            anchor(derivative, f1, derivative_allowance(f1, scale, z.dtype)))


def lazy_scale(rule) -> Callable[[], Scale]:
    """The function's scale of ``rule``'s torch forward, computed on first need (inside the
    check, so that a forward that raises is reported as the check reports user code)."""
    known: list[Scale] = []

    def scale() -> Scale:
        if not known:
            known.append(torch_scale(rule.torch))
        return known[0]

    return scale


def anchored_torch(rule, scale: Callable[[], Scale]) -> Callable:
    """The torch witness's activation: f(z) with your value and derivative where they are f's up
    to precision (``anchored_values``); value and gradient as one differentiable expression,
    v + d·(z − stop_grad z), whose value is v exactly and whose derivative is d."""
    import torch

    def forward(z):
        at = z.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            value = rule.torch(at)
            (slope,) = torch.autograd.grad(value.sum(), at)
        f, f1 = (t.detach().numpy().astype(np.float64) for t in (value, slope))
        v, d = anchored_values(rule, z.detach().numpy(), f, f1, scale(), units_last=True)
        d = np.where(np.isfinite(d), d, 0.0)  # an infinite slope would turn v + 0·d into NaN
        as_z = {"dtype": z.dtype}
        return torch.tensor(v, **as_z) + torch.tensor(d, **as_z) * (z - z.detach())

    return forward


def anchored_jax(rule, scale: Callable[[], Scale]) -> Callable:
    """The jax witness's activation, anchored likewise: a custom JVP whose primal and tangent
    come from ``anchored_values`` through a host callback (your NumPy code runs on the host)."""
    import jax
    import jax.numpy as jnp

    def host(z, f, f1, size: Scale):
        try:
            v, d = anchored_values(rule, np.asarray(z), np.asarray(f), np.asarray(f1), size)
        except Exception:  # e.g. code that takes no padded (width, batch) z: the torch witness and
            v, d = f, f1  # the rule have run it on the real shapes and reported what it raised
        return np.asarray(v, z.dtype), np.asarray(d, z.dtype)

    @jax.custom_jvp
    def forward(z):
        return both(z)[0]

    def both(z):
        f, f1 = jax.jvp(rule.jax, (z,), (jnp.ones_like(z),))
        shape = jax.ShapeDtypeStruct(z.shape, z.dtype)
        size = scale()  # at trace time, in Python: a forward that raises says so plainly
        return jax.pure_callback(lambda *arrays: host(*arrays, size), (shape, shape), z, f, f1,
                                 vmap_method="sequential")

    @forward.defjvp
    def _(primals, tangents):
        (z,), (t,) = primals, tangents
        v, d = both(z)
        return v, d * t

    return forward


def distinct(a: float, b: float) -> tuple[str, str]:
    """a and b to 10 significant digits, or as many more (up to 17, which tells any two floats
    apart) as it takes for different numbers to read differently."""
    for digits in range(10, 18):
        shown = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if shown[0] != shown[1] or a == b:
            return shown
    return shown


@dataclass(frozen=True)
class PrecisionNote:
    """Where your value (or derivative) is further from the witnesses than a correct formula's
    own rounding, yet within what a correct formula with rounded intermediates may lose
    (``bpcheck.user.precision``): rounding, not a different function — no verdict, a remedy."""

    quantity: str  # "value" or "derivative"
    points: int  # grid points where it is so
    z: float  # where the relative error is largest
    yours: float
    theirs: float
    scale: float  # S_f (or S_f′), what the error is judged against

    @property
    def relative(self) -> float:
        return abs(self.yours - self.theirs) / abs(self.theirs) if self.theirs else np.inf

    def __str__(self) -> str:
        name = {"value": "σ", "derivative": "σ′"}[self.quantity]
        yours, theirs = distinct(self.yours, self.theirs)
        return (f"precision note: your {name} loses relative precision at {self.points} of the grid's "
                f"points — at z = {self.z:.6g} it is {yours}, torch {theirs} (relative error "
                f"{self.relative:.1e}); an absolute error that small against the function's scale "
                f"({self.scale:.3g}, its largest |{name}| on the grid) is rounding, not a wrong {name}. "
                "The usual cause is cancellation, a small "
                "result from the difference of larger intermediates; the usual remedies: np.expm1(z) "
                "for exp(z) − 1, np.logaddexp(0, z) or np.log1p(np.exp(z)) for log(1 + exp(z)), "
                "np.tanh(z) for tanh written with exp, scipy.special.erfc(−x) for 1 + erf(x)")


@dataclass(frozen=True)
class Unjudged:
    """Grid points where torch's and jax's own values differ by more than a correct formula's
    rounding but within the function's scale's: judged there against that scale only."""

    points: int
    z: float  # the worst of them
    torch: float
    jax: float
    scale: float

    def __str__(self) -> str:
        torch_value, jax_value = distinct(self.torch, self.jax)
        return (f"at {self.points} grid points your torch and jax forwards differ by their own rounding "
                f"(at z = {self.z:.6g}: torch {torch_value}, jax {jax_value}); there your σ is judged "
                f"against the rounding of the function's scale ({self.scale:.3g}) only")


def note(quantity: str, z, yours, theirs, tight, scale: float) -> PrecisionNote | None:
    """The precision note for points beyond ``tight`` (the mismatches were taken first)."""
    gap = np.abs(np.asarray(yours, np.float64) - theirs)
    beyond = gap > tight
    if not beyond.any():
        return None
    relative = np.where(beyond, gap / np.maximum(np.abs(theirs), np.finfo(np.float64).tiny), -1.0)
    i = int(np.argmax(relative))
    return PrecisionNote(quantity, int(beyond.sum()), float(z.flat[i]), float(np.asarray(yours).flat[i]),
                         float(np.asarray(theirs).flat[i]), scale)


def unjudged(z, f, j, tight, scale: float) -> Unjudged | None:
    gap = np.abs(j - f)
    beyond = gap > tight
    if not beyond.any():
        return None
    i = int(np.argmax(np.where(beyond, gap / tight, -1.0)))
    return Unjudged(int(beyond.sum()), float(z.flat[i]), float(f.flat[i]), float(j.flat[i]), scale)
