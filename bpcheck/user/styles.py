"""Calling styles: a user's layer code as it is written, adapted to one pair
``forward(x, params) → (out, cache)``, ``backward(dout, cache) → (dx, {name: gradient})`` in the
user's names and layouts (``bpcheck.user.like`` then converts names and layouts).

* ``as_pair``: the cs231n pair, its backward returning ``(dx, dw, db)`` in the order of
  ``parameters=`` or ``(dx, {"w": dw, …})``; a forward returning ``out`` alone; a functional
  ``backward(dout, x, params)`` (three parameters).
* ``object_pair``: an object with ``forward(x)``/``backward(dout)``, its parameters and
  gradients as attributes (``self.W``, ``self.dW``), made afresh for each call, including one
  that makes its parameters on its first call; or one whose ``backward`` hands its gradients to
  an optimizer it holds (``optimizer=``: bpcheck gives it a ``RecordingOptimizer``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np


def _positional(function: Callable) -> int:
    """How many positional parameters ``function`` takes (0 where it cannot be told)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return 0
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in kinds and p.default is inspect.Parameter.empty for p in parameters)


def named_gradients(result: object, names: tuple[str, ...]) -> object:
    """``(dx, g_1, …, g_k)`` → ``(dx, {names[i]: g_i})``; anything else as it is (the guard's
    checks say what is wrong with it)."""
    if not names and isinstance(result, np.ndarray):  # a layer without parameters: dx alone
        return result, {}
    if isinstance(result, tuple) and len(result) == len(names) + 1 and not (
            len(result) == 2 and isinstance(result[1], dict)):
        return result[0], dict(zip(names, result[1:], strict=True))
    return result


def as_pair(forward: Callable, backward: Callable, names: tuple[str, ...]) -> tuple[Callable, Callable]:
    """The user's functions as one pair (module docstring); ``names``: the parameters in the
    order a positional backward returns their gradients."""
    functional = _positional(backward) >= 3

    def pair_forward(x: np.ndarray, params: dict) -> tuple[object, object]:
        result = forward(x, params)
        if isinstance(result, tuple) and len(result) == 2:
            return result[0], (result[1], x, params)
        return result, (None, x, params)

    def pair_backward(dout: np.ndarray, cache: tuple) -> object:
        own, x, params = cache
        return named_gradients(backward(dout, x, params) if functional else backward(dout, own), names)

    return pair_forward, pair_backward


class RecordingOptimizer:
    """What bpcheck hands a layer that updates itself: ``update(w, grad)`` records ``grad`` as
    the gradient of the parameter ``w`` is (by identity, else the only one of its shape) and
    returns the SGD step w − η·grad, η = LR, a new array: a backward that goes on with the
    updated weights (dx from the new W) is caught. ``copy.copy`` of it records into the same table."""

    LR = 0.5

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.recorded: dict[str, np.ndarray] = {}

    def update(self, w: np.ndarray, grad: np.ndarray) -> np.ndarray:
        same = [n for n, v in self.params.items() if v is w] or [
            n for n, v in self.params.items() if np.shape(v) == np.shape(w)]
        if len(same) != 1:
            raise ValueError(f"optimizer.update got an array of shape {np.shape(w)} that is not one "
                             f"of the layer's parameters {sorted(self.params)}")
        self.recorded[same[0]] = grad
        return w - w.dtype.type(self.LR) * grad if isinstance(w, np.ndarray) else w

    def __copy__(self) -> RecordingOptimizer:
        return self  # one table for the whole layer

    def __deepcopy__(self, memo: dict) -> RecordingOptimizer:
        return self


def _where(layer: object, pattern: str, name: str) -> tuple[object, str | None, str]:
    """(the object, the dict attribute or None, the key) ``pattern`` names for parameter
    ``name``: ``"d{}"`` the attribute ``dW``, ``"grads[{}]"`` the entry ``layer.grads["W"]``."""
    attribute, bracket, key = pattern.format(name).partition("[")
    return layer, (attribute if bracket else None), (key.rstrip("]") if bracket else attribute)


def _get(layer: object, pattern: str, name: str) -> object:
    _, table, key = _where(layer, pattern, name)
    if table is None:
        return getattr(layer, key, None)
    return (getattr(layer, table, None) or {}).get(key)


def _set(layer: object, pattern: str, name: str, value: np.ndarray) -> None:
    _, table, key = _where(layer, pattern, name)
    if table is None:
        setattr(layer, key, value)
    else:
        getattr(layer, table)[key] = value


def object_pair(make: Callable[[], object], gradients: str = "d{}", parameters: str = "{}",
                optimizer: Callable[[object, RecordingOptimizer], object] | None = None,
                methods: tuple[str, str] = ("forward", "backward")) -> tuple[Callable, Callable]:
    """(forward, backward) for ``UserLayer`` from a layer object of yours (module docstring).
    Each forward makes a fresh object, sets its parameters (after a first call if it makes its
    own then) and runs its forward method on x (several named inputs, a dict: on each in order,
    ``forward(q, k, v)``); backward runs its backward method on dout (several inputs: it
    returns their gradients, ``(dq, dk, dv)``) and reads the gradients.

    Args:
        make: ``make()`` → a new layer object.
        gradients: where each gradient is read: ``"d{}"``, the attribute ``dW``;
            ``"grads[{}]"``, ``layer.grads["W"]``.
        parameters: where each parameter is set: ``"{}"``, the attribute ``W``;
            ``"params[{}]"``, ``layer.params["W"]``.
        optimizer: for a layer that updates itself in its backward, ``optimizer(layer,
            recorder)`` hands it bpcheck's ``RecordingOptimizer``; the gradients are what it
            handed the recorder.
        methods: the names of its forward and backward methods."""
    run, back = methods

    def forward(x: np.ndarray | dict, params: dict) -> tuple[np.ndarray, tuple]:
        layer, recorder = make(), RecordingOptimizer()
        xs = tuple(x.values()) if isinstance(x, dict) else (x,)
        if optimizer is not None:
            optimizer(layer, recorder)
        if any(_get(layer, parameters, name) is None for name in params):  # made on its first call
            getattr(layer, run)(*(a.copy() for a in xs))
        for name, value in params.items():
            _set(layer, parameters, name, value)
        recorder.params = dict(params)
        return getattr(layer, run)(*xs), (layer, recorder, tuple(params), len(xs))

    def backward(dout: np.ndarray, cache: tuple) -> tuple:
        layer, recorder, names, inputs = cache
        dx = getattr(layer, back)(dout)
        dxs = tuple(dx) if inputs > 1 and isinstance(dx, tuple | list) else (dx,)
        if optimizer is not None:
            missing = [name for name in names if name not in recorder.recorded]
            if missing:
                raise ValueError(f"backward handed the optimizer no gradient for {', '.join(missing)}")
            return *dxs, dict(recorder.recorded)
        return *dxs, {name: _get(layer, gradients, name) for name in names}

    return forward, backward
