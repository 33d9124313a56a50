"""What each activation and loss name *is*, apart from its math: one record per name.

The math of a name lives in ``manual/activations.py`` or ``manual/losses.py`` and, written
independently, in each witness under ``reference/``, all keyed by the name. Everything else
about it is declared here, once: where it may stand in a network, which targets a loss takes,
its kinks, how large its derivative can be, and how much computing it from outputs amplifies
rounding. ``manual.spec`` validates with these records; bpcheck's tolerances, strategies,
mutants and diagnosis read them; a user's activation or loss joins as a record of the same
type. No module special-cases a name by a literal outside this file (a test checks).

Conditioning κ (``output_form_condition``, ``condition``) says how much an activation's
derivative taken from its output, or a loss's gradient, amplifies a relative rounding error
of that output; bpcheck.core.tolerances explains where it enters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: an array argument or result, in every module of manual/, bpcheck/ and reference/ (imported
#: from ``manual.spec``, beside ``Params``)
Array = np.ndarray


def saturation(z: Array) -> Array:
    """1 + e^{|z|} = 1/(1 − σ(|z|)), capped before overflow: σ′ from σ near 0 or 1."""
    return 1.0 + np.exp(np.minimum(np.abs(z), 700.0))


def tanh_saturation(z: Array) -> Array:
    """2·cosh²(z) = 2/(1 − tanh²(z)), capped before overflow: tanh′ from tanh near ±1."""
    return 2.0 * np.cosh(np.minimum(np.abs(z), 350.0)) ** 2


def dominance(z: Array) -> Array:
    """1/(1 − max_c softmax(z)_c) per sample, z of shape (N, C); 1 when C = 1 (s ≡ 1, exact)."""
    if z.shape[-1] == 1:
        return np.ones(z.shape[:-1])
    shifted = np.exp(z - z.max(axis=-1, keepdims=True))
    rest = shifted.sum(axis=-1) - 1.0  # Σ over the non-maximal classes (ties count too)
    return np.minimum(1.0 + 1.0 / np.maximum(rest, 1e-300), 1e300)


def clamping(p: Array) -> Array:
    """1/min(p, 1 − p): a loss on probabilities that divides by p(1 − p) near 0 and 1."""
    return 1.0 / np.maximum(np.minimum(p, 1.0 - p), 1e-300)


@dataclass(frozen=True)
class ActivationRecord:
    """An activation name and all it is besides its math."""

    name: str
    #: default of the parameter a name may carry as ``name:VALUE`` (None: it takes none)
    parameter: float | None = None
    #: mixes units, so it may stand at the output layer only
    output_only: bool = False
    #: normalises across the outputs: with one output it is constant and every gradient is zero
    across_outputs: bool = False
    #: pre-activations where the derivative jumps; generic draws keep away from them
    kinks: tuple[float, ...] = ()
    #: |σ′| ≤ bound·max(1, |parameter|) where the tests draw z (softmax's vjp included)
    derivative_bound: float = 2.0
    #: σ′ ≡ 1: a missing, doubled or misplaced σ′ changes nothing
    constant_derivative: bool = False
    #: σ′ at the output a equals σ′ at z (the sign of a is the sign of z): a derivative taken
    #: at the wrong argument changes nothing
    same_derivative_at_output: bool = False
    #: κ_out(z) of z as (N, units): how much σ′ computed from outputs amplifies rounding
    output_form_condition: Callable[[Array], Array] | None = None
    #: (z, parameter) → where σ′ is exactly zero (a dead relu unit), not merely underflowing
    dead: Callable[[Array, float | None], Array] | None = None
    #: σ′ written in terms of the output a (sigmoid a(1 − a)): the form hand-written code often
    #: applies to z by mistake, a hypothesis of the diagnosis
    derivative_from_output: Callable[[Array], Array] | None = None


#: What a loss's targets are: ``values`` (any finite numbers, like the output), ``probabilities``
#: (each in [0, 1]), ``distributions`` (in [0, 1], each sample's summing to one: soft labels),
#: ``one_hot`` (a single 1 per sample) or ``labels`` ((N,) integer classes). The built-in losses
#: take values, probabilities or labels; a user's loss may declare any (``UserLoss.targets``).
TARGET_KINDS = ("values", "probabilities", "distributions", "one_hot", "labels")
#: The kinds whose targets are probabilities (each in [0, 1]).
PROBABILITY_TARGETS = ("probabilities", "distributions", "one_hot")


@dataclass(frozen=True)
class LossRecord:
    """A loss name and all it is besides its math."""

    name: str
    #: ``values`` (finite, like the output), ``probabilities`` (in [0, 1]) or ``labels``
    #: (one integer class in [0, C) per sample)
    targets: str = "values"
    #: normalises across the outputs: with one output every gradient through it is zero
    across_outputs: bool = False
    #: output activations whose outputs it takes as probabilities (empty: any output)
    probability_outputs: tuple[str, ...] = ()
    #: its gradient with respect to the output is the residual a − y
    residual_gradient: bool = False
    #: its gradient divides by p(1 − p), so running-error magnitudes do too
    divides_by_variance: bool = False
    #: κ(z_L, a_L) of the output pre-activations and outputs, (N, C) each
    condition: Callable[[Array, Array], Array] | None = None

    def __post_init__(self) -> None:
        if self.targets not in TARGET_KINDS:
            raise ValueError(f"targets={self.targets!r} is unknown; expected one of {list(TARGET_KINDS)}")


ACTIVATIONS: dict[str, ActivationRecord] = {record.name: record for record in (
    ActivationRecord("sigmoid", output_form_condition=saturation,
                     derivative_from_output=lambda a: a * (1.0 - a)),
    ActivationRecord("tanh", output_form_condition=tanh_saturation,
                     derivative_from_output=lambda a: 1.0 - a * a),
    ActivationRecord("relu", kinks=(0.0,), same_derivative_at_output=True,
                     dead=lambda z, slope: z < 0),
    ActivationRecord("leaky_relu", parameter=0.01, kinks=(0.0,), same_derivative_at_output=True,
                     dead=lambda z, slope: (z < 0) & (slope == 0)),
    ActivationRecord("softplus", derivative_from_output=lambda a: -np.expm1(-a)),
    ActivationRecord("identity", constant_derivative=True),
    ActivationRecord("softmax", output_only=True, across_outputs=True, output_form_condition=dominance),
)}

LOSSES: dict[str, LossRecord] = {record.name: record for record in (
    LossRecord("half-sse", residual_gradient=True),
    LossRecord("mse"),
    LossRecord("bce", "probabilities", probability_outputs=("sigmoid", "softmax"),
               divides_by_variance=True, condition=lambda z, p: clamping(p)),
    LossRecord("bce-logits", "probabilities", condition=lambda z, p: saturation(z)),
    LossRecord("softmax-ce", "probabilities", across_outputs=True, condition=lambda z, p: dominance(z)),
    LossRecord("softmax-ce-labels", "labels", across_outputs=True,
               condition=lambda z, p: dominance(z)),
)}


#: The reductions and dtypes a model may name (``manual.spec``, ``manual.stack``).
REDUCTIONS: tuple[str, ...] = ("sum", "mean")
DTYPES: tuple[str, ...] = ("float64", "float32")


def one_of(value: Any, allowed: tuple[str, ...] | list[str] | dict, argument: str) -> None:
    """A ValueError naming ``argument`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{argument}={value!r} is unknown; expected one of {list(allowed)}")


def parse_activation(name: str, argument: str = "activation") -> tuple[str, float | None]:
    """``"leaky_relu:0.2"`` → ``("leaky_relu", 0.2)``; ``"tanh"`` → ``("tanh", None)``."""
    if not isinstance(name, str):
        raise TypeError(f"{argument}={name!r} must be a name (str)")
    base, colon, text = name.partition(":")
    one_of(base, ACTIVATIONS, argument)
    default = ACTIVATIONS[base].parameter
    if default is None:
        if colon:
            raise ValueError(f"{argument}={name!r}: {base} takes no parameter")
        return base, None
    try:
        value = float(text) if colon else default
    except ValueError:
        raise ValueError(f"{argument}={name!r}: expected {base}:<number>") from None
    if not np.isfinite(value):
        raise ValueError(f"{argument}={name!r}: the parameter must be finite")
    return base, value
