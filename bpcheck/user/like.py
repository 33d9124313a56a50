"""``UserLayer(..., like="conv2d:2,k3,s2,p1")``: a user's layer of a kind bpcheck knows,
declared, not re-implemented. The kind's record (``manual.layer_kinds``) and text
(``manual.stack_text``) pin it; bpcheck's own witnesses of that kind (``reference.torch_stack``,
``reference.jax_stack``) check it, so the user writes no torch or jax.

``Like`` is the declaration read once: the pinned layer, the user's name for each of the kind's
parameters (``parameters=("w", "b")`` in the kind's order, or ``{"w": "W", …}`` user → kind),
and the user's layouts (``bpcheck.user.layouts``; ``layout="NHWC"`` for the data alone, or
``{"x": "NHWC", "w": "HWIO", "b": "111O"}``). ``like_pair`` is the pair the derived network
runs for every layer equal to the pinned one (the kind's own pair for the others): the user's
code (any calling style, ``bpcheck.user.styles``) between conversions of names and layouts,
each call guarded (``bpcheck.user.guards``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from bpcheck.user.guards import guard
from bpcheck.user.layouts import DATA, fits, from_user, to_user, user_shape
from bpcheck.user.styles import as_pair
from manual.layer_kinds import LAYER_KINDS, Layer
from manual.stack_text import parse_layers

#: The kinds ``like=`` takes: one input of floats (no tokens, masks, residual bodies, and no
#: recurrent layers or attention yet), on (N, F), (N, T, D) or images.
KINDS = ("conv2d", "max_pool2d", "avg_pool2d", "batch_norm", "layer_norm", "dense")


@dataclass(frozen=True)
class Like:
    """A declaration read (module docstring): ``names`` kind → user name, ``axes`` kind
    parameter → the user's layout ("" for the kind's), ``data`` the user's data layout ("" for
    bpcheck's), ``ranks`` the sample ranks it takes."""

    text: str
    layer: Layer
    names: dict[str, str]
    axes: dict[str, str]
    data: str
    ranks: tuple[int, ...]


def _pinned(like: str) -> Layer:
    if not isinstance(like, str):
        raise TypeError(f"like={like!r}: expected a layer as text, e.g. 'conv2d:2,k3,s2,p1'")
    try:
        layers = parse_layers(like)
    except ValueError as error:
        raise ValueError(f"like={like!r}: {error}") from None
    if len(layers) != 1 or layers[0].kind not in KINDS:
        raise ValueError(f"like={like!r}: expected one layer of a kind in {list(KINDS)}, e.g. "
                         "'conv2d:2,k3,s2,p1' or 'dense:3'")
    return layers[0]


def _names(like: str, kind: tuple[str, ...], parameters: object) -> dict[str, str]:
    """Kind parameter → the user's name, from a tuple in the kind's order or a mapping user → kind
    (none given: the kind's own names)."""
    if isinstance(parameters, dict) and not parameters:
        return {k: k for k in kind}
    if isinstance(parameters, tuple | list) and all(isinstance(p, str) for p in parameters):
        if len(parameters) != len(kind) or len(set(parameters)) != len(parameters):
            raise ValueError(f"parameters={tuple(parameters)!r}: {like} has {len(kind)} parameters "
                             f"{kind}; name each once, in that order")
        return dict(zip(kind, parameters, strict=True))
    if isinstance(parameters, dict) and all(isinstance(k, str) and isinstance(v, str)
                                            for k, v in parameters.items()):
        if sorted(parameters.values()) != sorted(kind):
            raise ValueError(f"parameters={parameters!r}: map each of your names to one of {like}'s "
                             f"parameters {kind}, each once")
        return {k: u for u, k in parameters.items()}
    raise TypeError(f"parameters={parameters!r}: with like=, your parameters' names in the kind's "
                    f"order {kind}, or a mapping of yours to its")


def read_like(like: str, parameters: object, layout: object, rank: int | None) -> Like:
    """The declaration of a ``like=`` layer, or a ValueError/TypeError naming the argument."""
    layer = _pinned(like)
    record = LAYER_KINDS[layer.kind]
    names = _names(like, layer.parameters, parameters)
    given = {"x": layout} if isinstance(layout, str) else {} if layout is None else layout
    if not isinstance(given, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in given.items()):
        raise TypeError(f"layout={layout!r}: expected a data layout ('NHWC') or a mapping, e.g. "
                        "{'x': 'NHWC', 'w': 'HWIO', 'b': '111O'}")
    users = {u: k for k, u in names.items()}
    unknown = sorted(set(given) - {"x", *users})
    if unknown:
        raise ValueError(f"layout={layout!r}: {unknown} is neither 'x' nor one of your parameters "
                         f"{sorted(users)}")
    data = given.get("x", "")
    # sequences (rank 2) when asked for (a layout or rank=): (N, D) code may reshape (N, T, D)
    ranks = tuple(r for r in ((record.rank,) if isinstance(record.rank, int) else record.rank or (1, 2, 3))
                  if r != 2 or rank == 2 or (data and fits(data, DATA[2])))
    ranks = tuple(r for r in ranks if rank is None or r == rank)
    if data:
        ranks = tuple(r for r in ranks if fits(data, DATA[r]) and "1" not in data)
        if not ranks:
            raise ValueError(f"layout={layout!r}: {data!r} is not a data layout {like} takes (its "
                             f"samples' axes, with N: e.g. {DATA[3]!r} or 'NHWC' for images)")
    if not ranks:
        raise ValueError(f"rank={rank!r}: {like} takes no samples of that rank")
    axes = {users[u]: a for u, a in given.items() if u != "x"}
    for name, user in axes.items():
        kind_axes = record.axes[record.parameters.index(name)] if record.axes else ""
        if kind_axes == "*":
            kind_axes = DATA[ranks[0]][1:]
        if not fits(user, kind_axes):
            raise ValueError(f"layout[{names[name]!r}]={user!r}: {like}'s {name} has axes {kind_axes!r}"
                             " (O out, I in, H W the kernel, C channels); give yours as those letters "
                             "in your order, 1 for an axis of size one (a bias (1, 1, 1, C): '111O')")
    return Like(like, layer, names, axes, data, ranks)


def _parameter_axes(like: Like, name: str, rank: int) -> tuple[str, str]:
    """(bpcheck's axes, the user's) of the kind's parameter ``name`` for samples of ``rank``."""
    record = LAYER_KINDS[like.layer.kind]
    kind = record.axes[record.parameters.index(name)] if record.axes else ""
    if kind == "*":  # one sample's axes: the user's default is their own data layout's
        kind = DATA[rank][1:]
        return kind, like.axes.get(name, (like.data or DATA[rank])[1:])
    return kind, like.axes.get(name, kind)


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


def _expect(what: str, arrays: Callable[[object], object], due: dict[str, tuple[tuple[int, ...], str]],
            dtype: np.dtype, problem: Callable) -> Callable[[tuple, object], str | None]:
    """A guard's check of a forward's or backward's result (``bpcheck.user.layer._arrays_problem``):
    ``due`` gives each array's shape and the layout it is in."""
    def expect(args: tuple, result) -> str | None:
        found = arrays(result)
        if isinstance(found, str):
            return found
        rows = [(f"{what}{k}", found.get(k), shape, f"your {layout} layout's")
                for k, (shape, layout) in due.items()]
        return problem(rows, dtype, args)
    return expect


def like_pair(name: str, like: Like, forward: Callable, backward: Callable) -> tuple[Callable, Callable]:
    """The derived network's pair for ``like``'s kind (module docstring)."""
    from bpcheck.user.layer import _arrays_problem  # layer imports this module
    from manual.stack import output_shapes
    from manual.stack_network import PAIRS

    built_forward, built_backward = PAIRS[like.layer.kind]
    kind_order = like.layer.parameters
    user_forward, user_backward = as_pair(forward, backward, tuple(like.names[k] for k in kind_order))

    def pair_forward(x: np.ndarray, params: dict, layer: Layer) -> tuple[np.ndarray, object]:
        if replace(layer, name="") != like.layer:
            return built_forward(x, params, layer)
        rank, data = x.ndim - 1, like.data or DATA[x.ndim - 1]
        axes = {k: _parameter_axes(like, k, rank) for k in params}
        theirs = {like.names[k]: to_user(v, *axes[k]) for k, v in params.items()}
        out_shape = (x.shape[0], *output_shapes((layer,), x.shape[1:])[0])
        due = {"": (user_shape(out_shape, DATA[rank], data), data)}
        expect = _expect("forward's out", lambda r: {"": r[0]} if isinstance(r, tuple) else
                         "forward returned nothing bpcheck can read", due, x.dtype, _arrays_problem)
        out, cache = guard(name, "forward", user_forward, expect)(to_user(x, DATA[rank], data), theirs)
        built = built_forward(x, params, layer)[1] if LAYER_KINDS[layer.kind].buffers else ()
        return from_user(out, DATA[rank], data), _Yours(cache, rank, x.shape, params, built)

    def pair_backward(dout: np.ndarray, cache: object) -> tuple[np.ndarray, dict]:
        if not isinstance(cache, _Yours):
            return built_backward(dout, cache)
        data = like.data or DATA[cache.rank]
        axes = {k: _parameter_axes(like, k, cache.rank) for k in cache.params}
        due = {"dx": (user_shape(cache.x_shape, DATA[cache.rank], data), data)} | {
            f"grads[{like.names[k]!r}]": (user_shape(v.shape, *axes[k]), axes[k][1])
            for k, v in cache.params.items()}

        def arrays(result) -> dict | str:
            if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
                return (f"backward returned {type(result).__name__}; expected (dx, grads) with grads a "
                        f"dict, or (dx, {', '.join('d' + like.names[k] for k in kind_order)}) in the "
                        "order of parameters=")
            if set(result[1]) != set(like.names.values()):
                return (f"backward's grads have keys {sorted(result[1])}; expected "
                        f"{sorted(like.names.values())}")
            return {"dx": result[0]} | {f"grads[{u!r}]": g for u, g in result[1].items()}

        expect = _expect("backward's ", arrays, due, dout.dtype, _arrays_problem)
        dx, grads = guard(name, "backward", user_backward, expect)(
            to_user(dout, DATA[cache.rank], data), cache.cache)
        return from_user(dx, DATA[cache.rank], data), {
            k: from_user(grads[like.names[k]], *axes[k]) for k in cache.params}

    return pair_forward, pair_backward


def as_yours(like: Like, stack, params: dict, x: np.ndarray) -> dict[str, np.ndarray]:
    """The user's layer's parameters in a network (``stack``, its ``params``) as their code
    gets them (their names and layouts), and x too where their layer comes first."""
    from manual.stack import layer_inputs  # layer imports this module

    for layer, shape in layer_inputs(stack):
        if replace(layer, name="") == like.layer:
            rank = len(shape)
            found = {like.names[k]: to_user(params[f"{layer}.{k}"], *_parameter_axes(like, k, rank))
                     for k in layer.parameters}
            first = stack.layers[0] is layer
            return ({"x": to_user(x, DATA[rank], like.data or DATA[rank])} if first else {}) | found
    return {}
