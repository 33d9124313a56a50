"""One forward for three frameworks: a user's layer forward, activation value or loss written once
against an array namespace ``xp`` — the Array API (``xp.exp``, ``xp.sum(a, axis=…)``,
``xp.clip``, ``xp.where``, ``xp.mean(a, axis=…, keepdims=True)``…) — and run with NumPy
(``array_api_compat.numpy``), torch (``array_api_compat.torch``) and jax (``jax.numpy``), so that
the witnesses differentiate the very function the user wrote. A callable is written this way when
it has a parameter named ``xp``:

* a layer's ``forward(x, params, xp)`` returns ``out``, or ``(out, cache)`` as a cs231n forward
  does; with ``out`` alone, the backward gets ``cache = (x, params)``;
* an activation's ``value(z, xp)`` returns σ(z);
* a loss's ``per_sample(p, y, xp)`` returns its value, in the loss's ``layout`` (as its NumPy
  callable takes p and y).

Each bound callable is guarded (``bpcheck.user.guards.guard``): what it raises names the part
and the framework, e.g. "your forward (xp = torch) raised …".
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from bpcheck.user.guards import guard

#: The name of the parameter that marks a callable written against an array namespace.
XP = "xp"
FRAMEWORKS = ("numpy", "torch", "jax")
SOURCE = "__bpcheck_xp_source__"  # on a bound callable: the one written against xp


def takes_xp(function: Callable) -> bool:
    """Whether ``function`` has a parameter named ``xp`` (False where it has no signature)."""
    try:
        return XP in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def namespace(framework: str):
    """The array-API namespace of ``framework``: ``array_api_compat.numpy`` or
    ``array_api_compat.torch`` (imported on first use), or ``jax.numpy`` (already one)."""
    if framework == "numpy":
        import array_api_compat.numpy as xp
    elif framework == "torch":
        import array_api_compat.torch as xp
    elif framework == "jax":
        import jax.numpy as xp
    else:
        raise ValueError(f"framework={framework!r}: expected one of {FRAMEWORKS}")
    return xp


def bound(rule: str, part: str, function: Callable, framework: str) -> Callable:
    """``function`` with ``xp`` the namespace of ``framework``, guarded: an exception is a
    ``UserCodeError`` naming "``part`` (xp = ``framework``)"."""
    def call(*args):
        return function(*args, xp=namespace(framework))

    named = f"{part} (xp = {framework})"
    guarded = guard(rule, named, call, None if framework == "numpy" else _own(named, framework))
    setattr(guarded, SOURCE, function)
    return guarded


def _own(named: str, framework: str) -> Callable[[tuple, object], str | None]:
    """The result of a callable bound to torch or jax is that framework's array (its first
    item, a forward's out, if it returns a tuple): a NumPy one means NumPy's functions were
    called in place of xp's, and no witness can differentiate it."""
    modules = ("torch",) if framework == "torch" else ("jax", "jaxlib")

    def expect(args: tuple, result) -> str | None:
        out = result[0] if isinstance(result, tuple) and result else result
        if type(out).__module__.split(".")[0] in modules:
            return None
        return (f"your {named} returned {type(out).__name__}, not a {framework} array: call xp's functions "
                "(xp.where, xp.exp, …), not NumPy's, in code written against xp")

    return expect


def source(function):
    """The callable written against ``xp`` that ``function`` was bound from (``bound``), else
    ``function``: a declaration may reuse another's ``value``."""
    return getattr(function, SOURCE, function)


def _first(result):
    """``out`` of a forward's ``out`` or ``(out, cache)``."""
    return result[0] if isinstance(result, tuple) else result


def layer_forwards(rule: str, forward: Callable) -> dict[str, Callable]:
    """A layer's ``forward(x, params, xp)`` as the cs231n forward ``(x, params) → (out, cache)``
    (NumPy; cache ``(x, params)`` unless it returns its own) and the torch and jax forwards
    ``(x, params) → out``."""
    numpy_forward = bound(rule, "forward", forward, "numpy")

    def pair_forward(x, params):
        result = numpy_forward(x, params)
        return result if isinstance(result, tuple) else (result, (x, params))

    setattr(pair_forward, SOURCE, forward)

    torch_forward, jax_forward = (bound(rule, "forward", forward, f) for f in ("torch", "jax"))
    return {"forward": pair_forward, "torch": lambda x, params: _first(torch_forward(x, params)),
            "jax": lambda x, params: _first(jax_forward(x, params))}


def activation_values(rule: str, value: Callable) -> dict[str, Callable]:
    """An activation's ``value(z, xp)`` as its NumPy value and its torch and jax forwards, σ(z)."""
    return {"value": bound(rule, "value", value, "numpy"), "torch": bound(rule, "value", value, "torch"),
            "jax": bound(rule, "value", value, "jax")}


def loss_values(rule: str, per_sample: Callable, layout: str) -> dict[str, Callable]:
    """A loss's ``per_sample(p, y, xp)`` (p and y in ``layout``) as its NumPy ``per_sample`` and
    its torch forward — which takes samples × outputs tensors (``bpcheck.user.extend.UserLoss``),
    turned to the loss's layout here; (N,) labels as they are — and its jax forward (the loss's
    layout)."""
    torch_value = bound(rule, "per_sample", per_sample, "torch")

    def torch_forward(p, y):
        if layout == "samples_by_outputs":
            return torch_value(p, y)
        return torch_value(p.mT, y if y.ndim == 1 else y.mT)

    return {"per_sample": bound(rule, "per_sample", per_sample, "numpy"), "torch": torch_forward,
            "jax": bound(rule, "per_sample", per_sample, "jax")}


def unwitnessed(rule: str, framework: str) -> Callable:
    """The witness entry of a layer with no torch or jax forward: it says so if ever called."""
    def call(*args):
        raise RuntimeError(f"{rule} has no {framework} forward (your NumPy forward alone): only "
                           "finite differences of it can check its backward")

    return call


# --- what a declaration's torch= and jax= become ---------------------------------------------
DERIVED = "__bpcheck_derived__"  # set on the callables derived here (a copy's torch= is no conflict)


def derived(function: Callable) -> Callable:
    """``function`` marked as derived by bpcheck (``given`` ignores it)."""
    setattr(function, DERIVED, True)
    return function


def given(function) -> object:
    """``function`` if the user gave it, None if it is absent or was derived here (a
    ``dataclasses.replace`` of a declaration passes the derived ones back in)."""
    return None if function is None or getattr(function, DERIVED, False) else function


def resolved(torch) -> bool:
    """Whether a declaration's torch= was derived here: it is a copy of one already resolved
    (``dataclasses.replace``, as ``bpcheck.user.guards.guarded`` makes, its fields final), or
    another's forwards reused (``torch=elu.torch, jax=elu.jax``)."""
    return torch is not None and given(torch) is None


def _marked(fields: dict[str, object]) -> dict[str, object]:
    """The fields, their torch and jax callables marked ``derived``."""
    return {k: derived(v) if k in ("torch", "jax") else v for k, v in fields.items()}


def _together(torch, jax) -> None:
    if (torch is None) != (jax is None):
        given, missing = ("torch", "jax") if jax is None else ("jax", "torch")
        raise TypeError(f"{given}= was given without {missing}=: give both, or neither (one forward "
                        "with an xp parameter instead)")


def layer_fields(name: str, forward: Callable, torch, jax) -> dict[str, Callable]:
    """What a ``UserLayer``'s forward, torch and jax become: a ``forward(x, params, xp)`` gives
    all three (those not given); a NumPy ``forward(x, params)`` with neither torch= nor jax= stays
    alone (checked against finite differences of itself only: ``bpcheck.user.own_forward``)."""
    again = resolved(torch)  # derived already: a copy's, or another declaration's, as given
    if not again:
        torch, jax, forward = given(torch), given(jax), source(forward)
        _together(torch, jax)
    if not (callable(forward) and takes_xp(forward)):
        return {}
    forwards = _marked(layer_forwards(name, forward))
    return {"forward": forwards["forward"]} | ({} if torch is not None else
                                               {"torch": forwards["torch"], "jax": forwards["jax"]})


def activation_fields(name: str, value: Callable, torch, jax, like: str | None) -> dict[str, object]:
    """What a ``UserActivation``'s value, torch and jax (and, with ``like``, kinks and
    derivative_bound) become: from ``like`` (``bpcheck.user.known``), or from a ``value(z, xp)``."""
    again = resolved(torch)  # derived already: a copy's, or another declaration's, as given
    if not again:
        torch, jax, value = given(torch), given(jax), source(value)
        _together(torch, jax)
    fields: dict[str, object] = {}
    xp_value = callable(value) and takes_xp(value)
    if xp_value:
        fields = activation_values(name, value)
    if again:
        return {"value": fields["value"]} if xp_value else {}
    if like is not None:
        if torch is not None:
            raise TypeError("like= and torch=/jax= were both given: like= stands for them; give one")
        from bpcheck.user.known import like_activation

        return fields | _marked(like_activation(like))
    if torch is None and not xp_value:
        raise TypeError("torch= and jax= are missing: write value(z, xp) once against an array "
                        "namespace, or say like='elu' for a known activation, or give both")
    return _marked(fields if torch is None else {"value": fields["value"]} if xp_value else {})


def loss_fields(name: str, per_sample: Callable, torch, jax, like: str | None, layout: str,
                batch: str | None, targets: str) -> dict[str, object]:
    """What a ``UserLoss``'s per_sample, torch and jax (and, with ``like``, targets and
    on_probabilities) become: from ``like``, or from a ``per_sample(p, y, xp)``. ``targets``
    other than the default "values" must be the known loss's."""
    again = resolved(torch)  # derived already: a copy's, or another declaration's, as given
    if not again:
        torch, jax, per_sample = given(torch), given(jax), source(per_sample)
        _together(torch, jax)
    fields: dict[str, object] = {}
    xp_value = callable(per_sample) and takes_xp(per_sample)
    if xp_value:
        fields = loss_values(name, per_sample, layout)
    if again:
        return {"per_sample": fields["per_sample"]} if xp_value else {}
    if like is not None:
        if torch is not None:
            raise TypeError("like= and torch=/jax= were both given: like= stands for them; give one")
        from bpcheck.user.known import like_loss

        known = like_loss(like, layout, batch)
        if targets not in ("values", known["targets"]):
            raise ValueError(f"targets={targets!r}: the loss like={like!r} takes {known['targets']}")
        return fields | _marked(known)
    if torch is None and not xp_value:
        raise TypeError("torch= and jax= are missing: write per_sample(p, y, xp) once against an "
                        "array namespace, or say like='mse' for a known loss, or give both")
    return _marked(fields if torch is None else {"per_sample": fields["per_sample"]} if xp_value else {})
