"""The pair the derived network runs for a ``like=`` layer's kind (``bpcheck.user.like``): for
every layer equal to the pinned one, the user's code (any calling style,
``bpcheck.user.styles``) between conversions of names, layouts (``bpcheck.user.layouts``) and
gate orders; for the others, the kind's own pair. Each call of the user's code is guarded
(``bpcheck.user.guards``): what it raises or wrongly returns names the part, and the layout due.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from bpcheck.user.guards import guard
from bpcheck.user.layouts import DATA, from_user, gate_order, to_user, user_shape
from bpcheck.user.like import Like, parameter_axes
from bpcheck.user.results import arrays_problem, in_dtype
from bpcheck.user.styles import as_pair
from manual.layer_kinds import LAYER_KINDS, Layer


@dataclass(frozen=True)
class _Yours:
    """The cache of the user's layer: theirs, and what converting back needs."""

    cache: object
    rank: int
    x_shape: tuple[int, ...]
    params: dict[str, np.ndarray]
    built: tuple = ()  # the kind's own cache, for a batch norm's running statistics

    def __iter__(self):  # ``manual.layers.normalisation.running_statistics`` unpacks it
        return iter(self.built)


def theirs(like: Like, params: dict[str, np.ndarray], rank: int, n: int) -> dict[str, np.ndarray]:
    """The kind's parameters (its names) as the user's code gets them: their names, layouts and
    gate order; kind parameters that share one of theirs summed (new arrays)."""
    found: dict[str, np.ndarray] = {}
    gates = LAYER_KINDS[like.layer.kind].gate_names
    for k, v in params.items():
        kind, user = parameter_axes(like, k, rank)
        if like.gates and "O" in kind:
            v = gate_order(v, kind.index("O"), gates, like.gates)
        a, u = to_user(v, kind, user, n), like.names[k]
        found[u] = found[u] + a if u in found else a
    return found


def ours(like: Like, grads: dict[str, np.ndarray], params: dict[str, np.ndarray], rank: int) -> dict:
    """The user's gradients (their names) as the kind's: each kind parameter gets the gradient
    of the user's that stands for it."""
    found = {}
    gates = LAYER_KINDS[like.layer.kind].gate_names
    for k in params:
        kind, user = parameter_axes(like, k, rank)
        g = from_user(grads[like.names[k]], kind, user)
        found[k] = gate_order(g, kind.index("O"), like.gates, gates) if like.gates and "O" in kind else g
    return found


def _expect(what: str, arrays: Callable[[object], object], due: dict[str, tuple[tuple[int, ...], str]],
            dtype: np.dtype) -> Callable[[tuple, object], str | None]:
    """A guard's check of a forward's or backward's result (``bpcheck.user.results.arrays_problem``):
    ``due`` gives each array's shape and the layout it is in."""

    def expect(args: tuple, result) -> str | None:
        found = arrays(result)
        if isinstance(found, str):
            return found
        rows = [(f"{what}{k}", found.get(k), shape, f"your {layout} layout's")
                for k, (shape, layout) in due.items()]
        return arrays_problem(rows, dtype, args)
    return expect


def _grads(like: Like) -> Callable[[object], dict | str]:
    """What a backward's result holds (``_expect``), or what is wrong with its container."""
    def arrays(result) -> dict | str:
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
            return (f"backward returned {type(result).__name__}; expected (dx, grads) with grads a "
                    f"dict, or (dx, {', '.join('d' + u for u in like.order)}) in the order of parameters=")
        if set(result[1]) != set(like.order):
            return f"backward's grads have keys {sorted(result[1])}; expected {sorted(like.order)}"
        return {"dx": result[0]} | {f"grads[{u!r}]": g for u, g in result[1].items()}
    return arrays


def like_pair(name: str, like: Like, forward: Callable, backward: Callable) -> tuple[Callable, Callable]:
    """The derived network's pair for ``like``'s kind (module docstring)."""
    from manual.stack import output_shapes
    from manual.stack_network import PAIRS

    built_forward, built_backward = PAIRS[like.layer.kind]
    user_forward, user_backward = as_pair(forward, backward, like.order)

    def pair_forward(x: np.ndarray, params: dict, layer: Layer) -> tuple[np.ndarray, object]:
        if replace(layer, name="") != like.layer:
            return built_forward(x, params, layer)
        rank, data = x.ndim - 1, like.data or DATA[x.ndim - 1]
        out_shape = (x.shape[0], *output_shapes((layer,), x.shape[1:])[0])
        due = {"": (user_shape(out_shape, DATA[rank], data), data)}
        expect = _expect("forward's out", lambda r: {"": r[0]} if isinstance(r, tuple) else
                         "forward returned nothing bpcheck can read", due, x.dtype)
        out, cache = guard(name, "forward", user_forward, expect)(to_user(x, DATA[rank], data),
                                                                  theirs(like, params, rank, x.shape[0]))
        built = built_forward(x, params, layer)[1] if LAYER_KINDS[layer.kind].buffers else ()
        mine = in_dtype(from_user(out, DATA[rank], data), x.dtype)
        return mine, _Yours(cache, rank, x.shape, params, built)

    def pair_backward(dout: np.ndarray, cache: object) -> tuple[np.ndarray, dict]:
        if not isinstance(cache, _Yours):
            return built_backward(dout, cache)
        data, n = like.data or DATA[cache.rank], cache.x_shape[0]
        shapes = {like.names[k]: user_shape(v.shape, *parameter_axes(like, k, cache.rank), n)
                  for k, v in cache.params.items()}
        layouts = {like.names[k]: parameter_axes(like, k, cache.rank)[1] for k in cache.params}
        due = {"dx": (user_shape(cache.x_shape, DATA[cache.rank], data), data)} | {
            f"grads[{u!r}]": (shapes[u], layouts[u]) for u in like.order}
        expect = _expect("backward's ", _grads(like), due, dout.dtype)
        dx, grads = guard(name, "backward", user_backward, expect)(to_user(dout, DATA[cache.rank], data),
                                                                    cache.cache)
        found = ours(like, grads, cache.params, cache.rank)
        return (in_dtype(from_user(dx, DATA[cache.rank], data), dout.dtype),
                {k: in_dtype(g, dout.dtype) for k, g in found.items()})

    return pair_forward, pair_backward


def as_yours(like: Like, stack, params: dict, x: np.ndarray) -> dict[str, np.ndarray]:
    """The user's layer's parameters in a network (``stack``, its ``params``) as their code
    gets them (their names and layouts), and x too where their layer comes first."""
    from manual.stack import layer_inputs

    for layer, shape in layer_inputs(stack):
        if replace(layer, name="") == like.layer:
            rank = len(shape)
            own = {k: params[f"{layer}.{k}"] for k in layer.parameters}
            first = stack.layers[0] is layer
            return ({"x": to_user(x, DATA[rank], like.data or DATA[rank])} if first else {}) | theirs(
                like, own, rank, x.shape[0])
    return {}
