"""``like=``: an activation or loss that is a known one is declared, not written again for torch
and jax. Its torch and jax forwards are bpcheck's own witnesses of that name (``reference.torch_ref``,
``reference.jax_ref``) — or, for an activation bpcheck does not use itself, the frameworks'
built-ins (``torch.nn.functional.elu`` and ``jax.nn.elu``) — and they check the user's NumPy value
and derivative as they would check torch= and jax= forwards. ``like="elu:0.5"`` passes the
parameter (elu's and celu's α, leaky_relu's slope). torch and jax are imported on first call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from manual.spec import ACTIVATIONS as ACTIVATION_RECORDS
from manual.spec import LOSSES as LOSS_RECORDS


def _torch_f():
    import torch.nn.functional as F

    return F


def _jax_nn():
    import jax.nn

    return jax.nn


@dataclass(frozen=True)
class Known:
    """A known activation: its torch and jax function of z for a parameter, the z where σ′ (or
    σ″: finite differences straddling it lose their accuracy) jumps, |σ′|'s bound, and the
    parameter's default (None: it takes none)."""

    torch: Callable[[float | None], Callable]
    jax: Callable[[float | None], Callable]
    kinks: tuple[float, ...] = ()
    bound: Callable[[float | None], float] = lambda _: 1.0
    parameter: float | None = None


def _framework(torch_name: str, jax_name: str, keyword: str | None = None,
               jax_keywords: dict | None = None, **fields) -> Known:
    """torch's and jax's built-ins of those names; ``keyword`` names the keyword the
    activation's parameter goes to (elu's ``alpha``)."""
    def keywords(value: float | None) -> dict:
        return {} if keyword is None else {keyword: value}

    return Known(lambda v: lambda z: getattr(_torch_f(), torch_name)(z, **keywords(v)),
                 lambda v: lambda z: getattr(_jax_nn(), jax_name)(z, **keywords(v), **(jax_keywords or {})),
                 **fields)


#: Activations bpcheck has no witness of its own for: the frameworks' built-ins, the same
#: function in both (torch's hardsigmoid is relu6(z + 3)/6, as jax's hard_sigmoid is).
FRAMEWORK_ACTIVATIONS = {
    "elu": _framework("elu", "elu", "alpha", kinks=(0.0,), bound=lambda a: max(1.0, a), parameter=1.0),
    "celu": _framework("celu", "celu", "alpha", kinks=(0.0,), parameter=1.0),
    "selu": _framework("selu", "selu", kinks=(0.0,), bound=lambda _: 1.76),  # λα = 1.7581
    "gelu": _framework("gelu", "gelu", jax_keywords={"approximate": False}, bound=lambda _: 1.13),
    "silu": _framework("silu", "silu", bound=lambda _: 1.1),
    "mish": _framework("mish", "mish", bound=lambda _: 1.1),
    "softsign": _framework("softsign", "soft_sign"),
    "log_sigmoid": _framework("logsigmoid", "log_sigmoid"),
    "relu6": _framework("relu6", "relu6", kinks=(0.0, 6.0)),
    "hard_sigmoid": _framework("hardsigmoid", "hard_sigmoid", kinks=(-3.0, 3.0)),
    "hard_tanh": _framework("hardtanh", "hard_tanh", kinks=(-1.0, 1.0)),
    "hard_swish": _framework("hardswish", "hard_swish", kinks=(-3.0, 3.0), bound=lambda _: 1.5),
}
#: bpcheck's own elementwise activations (softmax mixes units: no UserActivation is like it).
OWN_ACTIVATIONS = tuple(name for name, record in ACTIVATION_RECORDS.items() if not record.across_outputs)
KNOWN_ACTIVATIONS = (*OWN_ACTIVATIONS, *FRAMEWORK_ACTIVATIONS)


def _parse(like: str) -> tuple[str, str, str]:
    """``"elu:0.5"`` → ("elu", ":", "0.5"); a ValueError naming ``like`` for an unknown name."""
    if not isinstance(like, str):
        raise TypeError(f"like={like!r} must be a name (str), e.g. like='elu'")
    base, colon, text = like.partition(":")
    if base not in KNOWN_ACTIVATIONS:
        raise ValueError(f"like={like!r}: unknown activation; known: {', '.join(KNOWN_ACTIVATIONS)} "
                         "(or write value(z, xp) against an array namespace)")
    return base, colon, text


def like_activation(like: str) -> dict[str, object]:
    """``torch``, ``jax``, ``kinks`` and ``derivative_bound`` of the known activation ``like``."""
    base, colon, text = _parse(like)
    if base in OWN_ACTIVATIONS:
        from manual.vocabulary import parse_activation

        record = ACTIVATION_RECORDS[base]
        _, parameter = parse_activation(like, "like")

        def torch_forward(z):
            from reference import torch_ref

            return torch_ref.ACTIVATIONS[base](parameter)(z)

        def jax_forward(z):
            from reference import jax_ref

            return jax_ref.ACTIVATIONS[base](parameter)(z, None)

        bound = record.derivative_bound * max(1.0, abs(parameter or 0.0))
        return {"torch": torch_forward, "jax": jax_forward, "kinks": record.kinks, "derivative_bound": bound}
    known = FRAMEWORK_ACTIVATIONS[base]
    if colon and known.parameter is None:
        raise ValueError(f"like={like!r}: {base} takes no parameter")
    try:
        parameter = float(text) if colon else known.parameter
    except ValueError:
        raise ValueError(f"like={like!r}: expected {base}:<number>") from None
    return {"torch": _lazy(known.torch, parameter), "jax": _lazy(known.jax, parameter),
            "kinks": known.kinks, "derivative_bound": float(known.bound(parameter))}


def _lazy(factory: Callable[[float | None], Callable], parameter: float | None) -> Callable:
    """factory(parameter)(z), the framework imported on the first call."""
    return lambda z: factory(parameter)(z)


def like_loss(like: str, layout: str, batch: str | None) -> dict[str, object]:
    """``torch``, ``jax``, ``targets`` and ``on_probabilities`` of bpcheck's own loss ``like``:
    torch's on samples × outputs tensors, jax's on arrays in ``layout``; each summed or averaged
    over the samples for a ``batch`` loss."""
    if like not in LOSS_RECORDS:
        raise ValueError(f"like={like!r}: unknown loss; known: {', '.join(LOSS_RECORDS)} "
                         "(or write per_sample(p, y, xp) against an array namespace)")
    record = LOSS_RECORDS[like]
    reduce = {None: lambda v: v, "sum": lambda v: v.sum(), "mean": lambda v: v.mean()}[batch]

    def torch_forward(p, y):
        from reference import torch_ref

        return reduce(torch_ref.LOSSES[like](p, y))

    def jax_forward(p, y):
        import jax.numpy as jnp

        from reference import jax_ref

        if layout == "samples_by_outputs":
            p, y = p.T, (y if y.ndim == 1 else y.T)
        return reduce(jax_ref.LOSSES[like](p, y, jnp.ones(p.shape, bool)))

    return {"torch": torch_forward, "jax": jax_forward, "targets": record.targets,
            "on_probabilities": bool(record.probability_outputs)}
