"""The pair the derived network runs for a ``like=`` layer's kind (``bpcheck.user.like``): for
every layer equal to the pinned one, the user's code (any calling style,
``bpcheck.user.styles``) between conversions of names, layouts (``bpcheck.user.layouts``) and
gate orders; for the others, the kind's own pair. Each call of the user's code is guarded
(``bpcheck.user.guards``): what it raises or wrongly returns names the part, and the layout due.
An embedding's tokens go in as they are and its dx is None; a dropout's forward runs with
NumPy's global RNG replayed (``replayed``) and must keep the entries the mask read back keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from bpcheck.core.user_code import BadResult, UserCodeError
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


def _grads(like: Like, tokens: bool) -> Callable[[object], dict | str]:
    """What a backward's result holds (``_expect``), or what is wrong with its container; for
    tokens no dx (whatever is in its place is left unread)."""
    due = ("dW alone, (None, dW) or (None, grads) with grads a dict: tokens have no gradient" if tokens
           else f"(dx, grads) with grads a dict, or (dx, {', '.join('d' + u for u in like.order)}) in "
           "the order of parameters=")

    def arrays(result) -> dict | str:
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
            return f"backward returned {type(result).__name__}; expected {due}"
        if set(result[1]) != set(like.order):
            return f"backward's grads have keys {sorted(result[1])}; expected {sorted(like.order)}"
        return ({} if tokens else {"dx": result[0]}) | {f"grads[{u!r}]": g for u, g in result[1].items()}
    return arrays


class NotReplayed(BadResult):
    """A dropout's forward kept other entries than at an earlier call on the same shape."""


#: The seed NumPy's global RNG starts from at each call of a like= dropout's forward (``replayed``).
REPLAY_SEED = 0


@contextmanager
def replayed(on: bool) -> Iterator[None]:
    """NumPy's global RNG seeded with REPLAY_SEED for the block (``on``), then put back as it was:
    a dropout that draws ``np.random.rand(*x.shape) < keep`` draws the same mask at every call,
    and a backward that draws afresh draws another."""
    if not on:
        yield
        return
    # the legacy global RNG on purpose: it is the one users' code draws from
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(REPLAY_SEED)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def _same_mask(name: str, x: np.ndarray, out: np.ndarray, mask: np.ndarray) -> None:
    """A ``UserCodeError`` naming the forward unless it kept (out ≠ 0) the entries ``mask`` keeps,
    where x ≠ 0: the mask read off its forward on ones (``bpcheck.user.like_draws``) is replayed."""
    where = x != 0
    differ = int(np.count_nonzero((out != 0)[where] != (mask != 0)[where]))
    if differ:
        raise UserCodeError(name, "forward", NotReplayed(
            f"your dropout kept other entries than on an earlier call on the same shape ({differ} of "
            f"{x.size} differ): bpcheck replays your randomness by seeding NumPy's global RNG before each "
            "call of your forward, and by calling it afresh; a Generator of yours must be made in that "
            "call (object_pair makes your object anew each time: np.random.default_rng(0) in __init__), "
            "not shared between calls"))


def like_pair(name: str, like: Like, forward: Callable, backward: Callable) -> tuple[Callable, Callable]:
    """The derived network's pair for ``like``'s kind (module docstring)."""
    from manual.stack import output_shapes
    from manual.stack_network import PAIRS

    built_forward, built_backward = PAIRS[like.layer.kind]
    user_forward, user_backward = as_pair(forward, backward, like.order)
    tokens, dropout = like.layer.kind == "embedding", like.layer.kind == "dropout"

    def pair_forward(x: np.ndarray, params: dict, layer: Layer, *mask) -> tuple[np.ndarray, object]:
        """``mask``: a dropout's (the one its forward drew, read back); none: reading it."""
        if replace(layer, name="") != like.layer:
            return built_forward(x, params, layer, *mask)
        rank, data = x.ndim - 1, like.data or DATA[x.ndim - 1]
        out_shape = (x.shape[0], *output_shapes((layer,), x.shape[1:])[0])
        out_data = data if len(out_shape) == x.ndim else DATA[len(out_shape) - 1]  # tokens in, (N, T, D) out
        dtype = next(iter(params.values())).dtype if tokens else x.dtype
        due = {"": (user_shape(out_shape, DATA[len(out_shape) - 1], out_data), out_data)}
        expect = _expect("forward's out", lambda r: {"": r[0]} if isinstance(r, tuple) else
                         "forward returned nothing bpcheck can read", due, dtype)
        with replayed(dropout):
            out, cache = guard(name, "forward", user_forward, expect)(to_user(x, DATA[rank], data),
                                                                      theirs(like, params, rank, x.shape[0]))
        built = built_forward(x, params, layer)[1] if LAYER_KINDS[layer.kind].buffers else ()
        mine = in_dtype(from_user(out, DATA[len(out_shape) - 1], out_data), dtype)
        if dropout and mask and mask[0] is not None:
            _same_mask(name, x, mine, mask[0])
        return mine, _Yours(cache, rank, x.shape, params, built)

    def tokens_backward(dout: np.ndarray, cache: object) -> object:
        """The user's backward; for tokens, dW alone read as (None, {"W": dW})."""
        result = user_backward(dout, cache)
        return (None, {like.order[0]: result}) if tokens and isinstance(result, np.ndarray) else result

    def pair_backward(dout: np.ndarray, cache: object) -> tuple[np.ndarray | None, dict]:
        if not isinstance(cache, _Yours):
            return built_backward(dout, cache)
        data, n = like.data or DATA[cache.rank], cache.x_shape[0]
        out_data = data if dout.ndim == cache.rank + 1 else DATA[dout.ndim - 1]
        shapes = {like.names[k]: user_shape(v.shape, *parameter_axes(like, k, cache.rank), n)
                  for k, v in cache.params.items()}
        layouts = {like.names[k]: parameter_axes(like, k, cache.rank)[1] for k in cache.params}
        due = ({} if tokens else {"dx": (user_shape(cache.x_shape, DATA[cache.rank], data), data)}) | {
            f"grads[{u!r}]": (shapes[u], layouts[u]) for u in like.order}
        expect = _expect("backward's ", _grads(like, tokens), due, dout.dtype)
        dx, grads = guard(name, "backward", tokens_backward, expect)(
            to_user(dout, DATA[dout.ndim - 1], out_data), cache.cache)
        found = ours(like, grads, cache.params, cache.rank)
        return (None if tokens else in_dtype(from_user(dx, DATA[cache.rank], data), dout.dtype),
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
