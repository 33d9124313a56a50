r"""A user activation element by element: its value against its own torch and jax forwards, its
derivative against their autodiff, on a grid of z.

Inside a network a wrong forward and a wrong derivative look alike (the witnesses differentiate
the torch and jax forwards, finite differences the NumPy value). Here they are told apart, and
each is named by the element where it fails: "at z = 0.5 your σ′ = 0.86746, torch 0.86737".
The torch and jax forwards are also compared with each other: where they disagree, the
witnesses disagree among themselves, and no verdict on the derivative can stand.

Allowance, derived and measured like every other (``bpcheck.core.tolerances``): two correct float64
evaluations of f at z differ by about R·u·(|f(z)| + |z·f′(z)|) — the result's own roundings and
a relative rounding of z carried through f — for derivatives R·u·(|f′| + |z f″| + |f f″/f′|),
the last term a framework taking f′ from the stored output y = f(z) (tanh′ = 1 − y²), whose
relative rounding moves f′ by |y·df′/dy| = |f f″/f′|. A forward of many operations (mish's
tanh of a softplus) rounds more than R times: your torch forward is also run in float32, and
its distance from float64 at each point and its grid neighbours, scaled by u₆₄/u₃₂, measures
that. Your answers are also allowed SAFETY × the two witnesses' own distance from each other
nearby (two correct evaluations: a sample of the rounding there). The witnesses' values and
derivatives are compared too, beyond a correct formula's rounding (``bpcheck.user.precision``) and
KERNEL_CONSTANTS of the derivative's scale: a framework's kernel may hold a float32 constant
(torch's hardsigmoid backward takes 1/6 as 0.16666667, 3e−8 off); beyond that they are
different functions, and no verdict on yours can stand. f′ and f″
come from torch's autodiff of your forward; the smallest normal number is added.

Every allowance also takes what a correct formula with rounded intermediates may lose against
the function's scale (``bpcheck.user.precision``): beyond the allowance above but within that, your
value or derivative earns a precision note with its remedy, never WRONG; and where torch and
jax round apart in the tails, the report says those points were judged against the scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np
import torch

from bpcheck.core.tolerances import ROUNDINGS_PER_VALUE, SAFETY, unit_roundoff
from bpcheck.mlp.strategies import KINK_MARGIN_ABSOLUTE
from bpcheck.user import precision
from bpcheck.user.precision import PrecisionNote, Unjudged, distinct, note, unjudged
from reference import jax_ref, numeric  # noqa: F401  (jax_ref: float64 in jax)

#: Where the grid samples z: |z| ≤ 10 (where the networks draw pre-activations), 801 points,
#: plus each kink ± 2·KINK_MARGIN_ABSOLUTE; points within KINK_MARGIN_ABSOLUTE of a kink are left out.
GRID = precision.SCALE_GRID
#: How far torch's and jax's derivatives of one forward may be apart, relative to the
#: derivative's scale, before they are different functions: SAFETY float32 roundings, for
#: kernels that hold float32 constants (measured: torch's hardsigmoid′ is 1/6 off by 3e−8).
KERNEL_CONSTANTS = SAFETY * float(np.finfo(np.float32).eps) / 2


@dataclass(frozen=True)
class Mismatch:
    """The worst element where two answers for one quantity differ beyond the allowance."""

    quantity: str  # "value" or "derivative"
    witness: str  # "torch", "jax", or "jax vs torch" (the witnesses among themselves)
    z: float
    yours: float  # the user's NumPy answer (jax's, for "jax vs torch")
    theirs: float
    allowed: float
    run: tuple[float, float] | None = None  # the grid's z from first to last of the run around z

    def __str__(self) -> str:
        name = {"value": "σ", "derivative": "σ′"}[self.quantity]
        yours, theirs = distinct(self.yours, self.theirs)
        run = "" if self.run is None else (f" (and at every z of the grid from {self.run[0]:.4g} to "
                                           f"{self.run[1]:.4g})")
        if self.witness == "jax vs torch":
            return (f"at z = {self.z:.6g} your torch forward gives {name} = {theirs} and your jax "
                    f"forward {yours}{run}")
        return f"at z = {self.z:.6g} your {name} = {yours}, {self.witness} {theirs}{run}"


class Reach:
    """The pre-activations a user activation met in the networks checked: their range, and how
    many were saturated (|z| > SATURATED_Z) or near a declared kink (within 0.1)."""

    SATURATED_Z = 5.0

    def __init__(self, name: str, kinks: tuple[float, ...]) -> None:
        self.name, self.kinks = name, kinks
        self.low, self.high, self.count, self.saturated, self.near_kinks = np.inf, -np.inf, 0, 0, 0

    def __call__(self, problem) -> None:
        p = problem.in_float64()
        for z, name in zip(numeric.preactivations(p.spec, p.params, p.X), p.spec.activations, strict=True):
            if name.partition(":")[0] != self.name:
                continue
            self.low, self.high = min(self.low, float(z.min())), max(self.high, float(z.max()))
            self.count += z.size
            self.saturated += int(np.sum(np.abs(z) > self.SATURATED_Z))
            self.near_kinks += int(sum(np.sum(np.abs(z - k) < 0.1) for k in self.kinks))

    def __str__(self) -> str:
        if not self.count:
            return "the networks met no pre-activation of it"
        kinks = f", {self.near_kinks} within 0.1 of a kink" if self.kinks else ""
        met = f"{self.count} pre-activation{'s' * (self.count != 1)}"
        return (f"the networks met {met} of it, z from {self.low:.3g} to "
                f"{self.high:.3g} ({self.saturated} with |z| > {self.SATURATED_Z:g}{kinks}); the grid "
                f"covers |z| ≤ {GRID[-1]:g} and each kink ± {2 * KINK_MARGIN_ABSOLUTE:g}")


def grid(kinks: tuple[float, ...]) -> np.ndarray:
    """The z at which an activation with these kinks is compared."""
    beside = 2 * KINK_MARGIN_ABSOLUTE
    points = np.concatenate([GRID, *([k - beside, k + beside] for k in kinks)])
    far = np.all([np.abs(points - k) >= KINK_MARGIN_ABSOLUTE for k in kinks], axis=0) if kinks else True
    return np.unique(points[far])


def _autodiff(forward, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(f, f′, f″) of a torch forward at z, elementwise. Where torch has no second derivative
    (``F.hardsigmoid``'s backward has none), f″ is the central difference of f′ over 2^−20·(1 + |z|):
    it enters only the allowances' |z f″| term."""
    at = torch.tensor(z, requires_grad=True)
    value = forward(at)
    (first,) = torch.autograd.grad(value.sum(), at, create_graph=True)
    try:
        second = (torch.autograd.grad(first.sum(), at, allow_unused=True)[0]
                  if first.requires_grad else None)
    except RuntimeError:  # "derivative for … is not implemented"
        step = 2.0**-20 * (1 + np.abs(z))
        return (value.detach().numpy(), first.detach().numpy(),
                (_first(forward, z + step) - _first(forward, z - step)) / (2 * step))
    second = torch.zeros_like(at) if second is None else second
    return value.detach().numpy(), first.detach().numpy(), second.detach().numpy()


def _first(forward, z: np.ndarray) -> np.ndarray:
    """f′ of a torch forward at z, elementwise."""
    at = torch.tensor(z, requires_grad=True)
    return torch.autograd.grad(forward(at).sum(), at)[0].numpy()


def _in_float32(forward, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(f, f′) of the torch forward computed in float32 at the float32 z (as float64; NaN where
    float32 overflows, which then adds nothing)."""
    at = torch.tensor(z.astype(np.float32), requires_grad=True)
    value = forward(at)
    (first,) = torch.autograd.grad(value.sum(), at)
    return (value.detach().numpy().astype(np.float64), first.numpy().astype(np.float64))


def _nearby(spread: np.ndarray) -> np.ndarray:
    """Each point's spread, or its grid neighbours' where larger (one float32 run is one
    sample of a random error; NaN counts as nothing)."""
    spread = np.nan_to_num(spread, nan=0.0, posinf=0.0)
    padded = np.pad(spread, ((0, 0), (1, 1)), mode="edge")
    return np.maximum.reduce([padded[:, :-2], padded[:, 1:-1], padded[:, 2:]])


def _jax(forward, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(f, f′) of a jax forward at z, elementwise (a forward-mode tangent of ones)."""
    value, tangent = jax.jvp(forward, (jax.device_put(z),), (jax.device_put(np.ones_like(z)),))
    return np.asarray(value, np.float64), np.asarray(tangent, np.float64)


def _worst(quantity: str, witness: str, z, yours, theirs, allowed) -> Mismatch | None:
    excess = np.abs(np.asarray(yours, np.float64) - theirs) / allowed
    bad = ~(excess <= 1.0)  # NaN counts as a mismatch
    if not bad.any():
        return None
    i = int(np.argmax(np.where(np.isnan(excess), np.inf, excess)))
    return Mismatch(quantity, witness, float(z.flat[i]), float(np.asarray(yours).flat[i]),
                    float(np.asarray(theirs).flat[i]), float(allowed.flat[i]),
                    _run(z.ravel(), bad.ravel(), i))


def _run(z: np.ndarray, bad: np.ndarray, i: int) -> tuple[float, float] | None:
    """The first and last z (sorted) of the unbroken run of ``bad`` points around point ``i``, if
    it holds more than one: a formula wrong on a whole interval, not at a point."""
    first, last = i, i
    while first > 0 and bad[first - 1]:
        first -= 1
    while last < len(bad) - 1 and bad[last + 1]:
        last += 1
    return None if first == last else (float(z[first]), float(z[last]))


@dataclass(frozen=True)
class Kink:
    """σ′ exactly at a kink: yours, what you declared, and each framework's convention."""

    z: float
    yours: float
    declared: float | None
    torch: float
    jax: float

    @property
    def as_declared(self) -> bool:
        return self.declared is None or self.yours == self.declared

    def __str__(self) -> str:
        said = "" if self.declared is None else f" (you declared {self.declared:g})"
        return (f"at the kink z = {self.z:g} your σ′ = {self.yours:g}{said}; torch's convention "
                f"{self.torch:g}, jax's {self.jax:g}")


def kink_conventions(rule) -> list[Kink]:
    """σ′ at each declared kink, exactly there: networks keep away from kinks, so this is where
    the declared convention is checked."""
    if not rule.kinks:
        return []
    z = np.array(rule.kinks, np.float64)[None, :]
    value = np.asarray(rule.value(z.copy()), np.float64)
    yours = np.asarray(rule.derivative(z.copy(), value.copy()), np.float64)
    _, torch_first, _ = _autodiff(rule.torch, z)
    _, jax_first = _jax(rule.jax, z)
    declared = rule.at_kinks or (None,) * len(rule.kinks)
    return [Kink(k, float(yours[0, i]), declared[i], float(torch_first[0, i]), float(jax_first[0, i]))
            for i, k in enumerate(rule.kinks)]


def undeclared_kinks(rule) -> list[tuple[float, float]]:
    """Where the torch forward's derivative jumps between two neighbouring grid points by more
    than its second derivative can carry it (SAFETY·max|f″|·Δz + rounding), away from every
    declared kink: a kink to declare, or networks near it will look like a wrong derivative."""
    z = grid(rule.kinks)[None, :]
    _, f1, f2 = _autodiff(rule.torch, z)
    step, jump = np.diff(z[0]), np.abs(np.diff(f1[0]))
    carried = SAFETY * np.maximum(np.abs(f2[0, :-1]), np.abs(f2[0, 1:])) * step
    rounding = SAFETY * ROUNDINGS_PER_VALUE * unit_roundoff(np.float64) * (1.0 + np.abs(f1[0, 1:]))
    declared_between = np.array([any(a < k < b for k in rule.kinks) for a, b in zip(z[0, :-1], z[0, 1:],
                                                                                    strict=True)],
                                bool) if rule.kinks else np.zeros(step.shape, bool)
    found = (jump > carried + rounding) & ~declared_between
    return [(float(a), float(b)) for a, b in zip(z[0, :-1][found], z[0, 1:][found], strict=True)]


@dataclass(frozen=True)
class GridFindings:
    """What the grid found: mismatches (a different function), precision notes, and points
    judged against the function's scale only because the witnesses differ there."""

    mismatches: list[Mismatch]
    notes: list[PrecisionNote]
    unjudged: Unjudged | None


def grid_findings(rule) -> GridFindings:
    """Every (quantity, witness) pair that differs somewhere on the grid beyond what a correct
    formula may lose (``bpcheck.user.precision``), at its worst element; then the precision notes
    and the points the witnesses' own rounding leaves judged against the function's scale.
    ``rule`` a (guarded) ``UserActivation``; z is passed as one row of units × samples."""
    z = grid(rule.kinks)[None, :]
    value = np.asarray(rule.value(z.copy()), np.float64)
    derivative = np.asarray(rule.derivative(z.copy(), value.copy()), np.float64)
    f, f1, f2 = _autodiff(rule.torch, z)
    j, j1 = _jax(rule.jax, z)
    tiny, scale = np.finfo(np.float64).tiny, SAFETY * ROUNDINGS_PER_VALUE * unit_roundoff(np.float64)
    f32, f1_32 = _in_float32(rule.torch, z)
    measured = SAFETY * unit_roundoff(np.float64) / unit_roundoff(np.float32)
    value_allowed = (scale * (np.abs(f) + np.abs(z * f1)) + measured * _nearby(np.abs(f32 - f))
                     + tiny)
    with np.errstate(divide="ignore", invalid="ignore"):  # f′ = 0: no output-form term there
        output_form = np.where(f1 != 0, np.abs(f * f2 / np.where(f1 != 0, f1, 1.0)), 0.0)
    derivative_own = (scale * (np.abs(f1) + np.abs(z * f2) + output_form)
                      + measured * _nearby(np.abs(f1_32 - f1)) + tiny)
    derivative_allowed = derivative_own + SAFETY * _nearby(np.abs(j1 - f1))
    yours_allowed = value_allowed + SAFETY * _nearby(np.abs(j - f))
    size = precision.torch_scale(rule.torch)
    formula = precision.value_allowance(z, f, f1, size, np.float64)
    formula_derivative = precision.derivative_allowance(f1, size, np.float64)
    found = [_worst("value", "torch", z, value, f, yours_allowed + formula),
             _worst("value", "jax", z, value, j, yours_allowed + formula),
             _worst("value", "jax vs torch", z, j, f, value_allowed + formula),
             _worst("derivative", "jax vs torch", z, j1, f1,  # different functions, not rounding
                    np.where(_at_jumps(rule, z), np.inf,  # an undeclared kink: conventions differ
                             derivative_own + KERNEL_CONSTANTS * (np.abs(f1) + size.derivative))),
             _worst("derivative", "torch", z, derivative, f1, derivative_allowed + formula_derivative),
             _worst("derivative", "jax", z, derivative, j1, derivative_allowed + formula_derivative)]
    mismatches = [m for m in found if m is not None]
    notes = [] if mismatches else [
        found for found in (note("value", z, value, f, yours_allowed, size.value),
                            note("derivative", z, derivative, f1, derivative_allowed, size.derivative))
        if found is not None]
    return GridFindings(mismatches, notes, unjudged(z, f, j, value_allowed, size.value))


def _at_jumps(rule, z: np.ndarray) -> np.ndarray:
    """Whether each z lies where torch's derivative jumps with no kink declared
    (``undeclared_kinks``): there each framework has its own convention, and the report
    suggests declaring the kink instead."""
    jumps = undeclared_kinks(rule)
    if not jumps:
        return np.zeros(z.shape, bool)
    return np.any([(z >= low) & (z <= high) for low, high in jumps], axis=0)


def activation_mismatches(rule) -> list[Mismatch]:
    """``grid_findings``' mismatches alone."""
    return grid_findings(rule).mismatches
