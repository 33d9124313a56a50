"""``UserLayer(..., like="conv2d:2,k3,s2,p1")``: a user's layer of a kind bpcheck knows,
declared, not re-implemented. The kind's record (``manual.layer_kinds``) and text
(``manual.stack_text``) pin it; bpcheck's own witnesses of that kind (``reference.torch_stack``,
``reference.jax_stack``) check it, so the user writes no torch or jax.

``Like`` is the declaration read once: the pinned layer, the user's name for each of the kind's
parameters (``parameters=("w", "b")`` in the kind's order, or ``{"w": "W", …}`` user → kind),
and the user's layouts (``bpcheck.user.layouts``; ``layout="NHWC"`` for the data alone, or
``{"x": "NHWC", "w": "HWIO", "b": "111O"}``; a recurrent layer's gates in your order,
``{"gates": "ifog"}``). ``bpcheck.user.like_pair`` runs the user's code between conversions.

Two kinds take inputs other than floats. ``embedding:D,vV`` reads integer tokens (N, T) in
[0, V), some token repeated (a gradient assigned, not accumulated, is caught), and returns
(N, T, D); its backward returns ``dW`` alone, ``(None, dW)`` or ``(None, {"W": dW})`` (tokens
have no gradient). ``dropout:pP`` draws its own mask: bpcheck replays its randomness (each call
of the forward starts from the same state: NumPy's global RNG seeded, and the forward a new
call, so a Generator made in it or in an object ``object_pair`` makes afresh restarts) and
reads the mask it draws off its forward on ones (the entries it keeps), which its witnesses
then use: out = x·mask/(1 − p). The mask's share kept is not checked, only the gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

from bpcheck.user.layouts import DATA, fits
from manual.layer_kinds import LAYER_KINDS, Layer
from manual.stack_text import parse_layers

#: The kinds ``like=`` takes: one input, of floats on (N, F), (N, T, D) or images, or of integer
#: tokens (N, T) (an embedding); a dropout's mask drawn by the user's own code (above); attention,
#: its query, key and value separate inputs if declared so (``inputs=``,
#: ``bpcheck.user.like_inputs``); no residual bodies yet.
KINDS = ("conv2d", "max_pool2d", "avg_pool2d", "batch_norm", "layer_norm", "dense", "rnn", "lstm", "gru",
         "embedding", "dropout", "attention")


#: attention's key bias: the description has none (the softmax removes it: its gradient is exactly
#: 0), but a user's layer may. Declared (eight names, or a mapping to "b_k") with ``inputs=``
#: (``("x",)`` for self-attention), it is given and its gradient held to 0
#: (``bpcheck.user.inputs_check``).
KEY_BIAS = "b_k"
KEY_BIASED = ("W_q", "b_q", "W_k", KEY_BIAS, "W_v", "b_v", "W_o", "b_o")


@dataclass(frozen=True)
class Like:
    """A declaration read (module docstring): ``names`` kind → user name (two kind parameters
    may share one of yours: summed, a recurrent layer's single bias), ``order`` your names in
    the order a positional backward returns their gradients, ``axes`` kind parameter → the
    user's layout, ``data`` the user's data layout ("" for bpcheck's), ``ranks`` the sample
    ranks it takes, ``gates`` a recurrent layer's gates in your order ("" for the kind's)."""

    text: str
    layer: Layer
    names: dict[str, str]
    order: tuple[str, ...]
    axes: dict[str, str]
    data: str
    ranks: tuple[int, ...]
    gates: str = ""
    #: several named inputs (``bpcheck.user.like_inputs``): the user's names of attention's
    #: query, key and value (two: query and key = value), each's layout in ``inputs_layout``;
    #: () for one input x
    inputs: tuple[str, ...] = ()
    inputs_layout: tuple[str, ...] = ()


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
    or a tuple of kind names that one of yours stands for (summed), none given: the kind's own."""
    if isinstance(parameters, dict) and not parameters:
        return {k: k for k in kind}
    if isinstance(parameters, tuple | list) and all(isinstance(p, str) for p in parameters):
        if len(parameters) != len(kind) or len(set(parameters)) != len(parameters):
            raise ValueError(f"parameters={tuple(parameters)!r}: {like} has {len(kind)} parameters "
                             f"{kind}; name each once, in that order")
        return dict(zip(kind, parameters, strict=True))
    if isinstance(parameters, dict) and all(isinstance(k, str) and (isinstance(v, str) or (
            isinstance(v, tuple) and all(isinstance(t, str) for t in v))) for k, v in parameters.items()):
        pairs = [(k, u) for u, v in parameters.items() for k in ((v,) if isinstance(v, str) else v)]
        if sorted(k for k, _ in pairs) != sorted(kind):
            raise ValueError(f"parameters={parameters!r}: map each of your names to one of {like}'s "
                             f"parameters {kind} (or a tuple of them, summed), each once")
        return dict(pairs)
    raise TypeError(f"parameters={parameters!r}: with like=, your parameters' names in the kind's "
                    f"order {kind}, or a mapping of yours to its")


def read_like(like: str, parameters: object, layout: object, rank: int | None,
              inputs: tuple[str, ...] = ()) -> Like:
    """The declaration of a ``like=`` layer, or a ValueError/TypeError naming the argument;
    ``inputs``: several inputs' names, checked already (``bpcheck.user.like_inputs.read_inputs``)."""
    layer = _pinned(like)
    record = LAYER_KINDS[layer.kind]
    names = _names(like, _kind_parameters(layer, parameters, inputs), parameters)
    order = tuple(parameters) if parameters else tuple(dict.fromkeys(names.values()))
    given = {"x": layout} if isinstance(layout, str) else {} if layout is None else layout
    if not isinstance(given, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in given.items()):
        raise TypeError(f"layout={layout!r}: expected a data layout ('NHWC') or a mapping, e.g. "
                        "{'x': 'NHWC', 'w': 'HWIO', 'b': '111O'}")
    users: dict[str, list[str]] = {}
    for k, u in names.items():
        users.setdefault(u, []).append(k)
    unknown = sorted(set(given) - {"x", "gates", *users, *inputs})
    if unknown:
        named = f"'gates', one of your inputs {list(inputs)}" if inputs else "'x', 'gates'"
        raise ValueError(f"layout={layout!r}: {unknown} is neither {named} nor one of your "
                         f"parameters {sorted(users)}")
    if inputs and "x" in given and "x" not in inputs:
        raise ValueError(f"layout={layout!r}: your layer takes inputs {list(inputs)}, not x: give "
                         "each input's layout by its name, e.g. {" + repr(inputs[0]) + ": 'NDT'}")
    gates = given.get("gates", "")
    if gates and sorted(gates) != sorted(record.gate_names or "-"):
        raise ValueError(f"layout['gates']={gates!r}: {like}'s gates are {record.gate_names or 'none'!r} "
                         "(torch's order); give them in yours, e.g. 'ifog'")
    data = given.get("x", "")
    if data and layer.kind == "embedding":
        raise ValueError(f"layout={layout!r}: {like} reads integer tokens (N, T) and returns (N, T, D): "
                         "no data layout to give, only W's ('OI' for a W stored (D, V))")
    # sequences (rank 2) when asked for (a layout or rank=): (N, D) code may reshape (N, T, D)
    takes = (record.rank,) if isinstance(record.rank, int) else record.rank or (1, 2, 3)
    ranks = tuple(r for r in takes if r != 2 or takes == (2,) or rank == 2 or (data and fits(data, DATA[2])))
    ranks = tuple(r for r in ranks if rank is None or r == rank)
    if data:
        ranks = tuple(r for r in ranks if fits(data, DATA[r]) and "1" not in data)
        if not ranks:
            raise ValueError(f"layout={layout!r}: {data!r} is not a data layout {like} takes (its "
                             f"samples' axes, with N: e.g. {DATA[3]!r} or 'NHWC' for images)")
    if not ranks:
        raise ValueError(f"rank={rank!r}: {like} takes no samples of that rank")
    for name in inputs:
        if not fits(given.get(name, DATA[2]), DATA[2]) or "1" in given.get(name, ""):
            raise ValueError(f"layout[{name!r}]={given[name]!r}: input {name!r} is a sequence; give its "
                             f"axes as N, T, D in your order, e.g. 'NTD' (bpcheck's) or 'NDT'")
    axes = {k: a for u, a in given.items() if u not in ("x", "gates", *inputs) for k in users[u]}
    for name, user in axes.items():
        kind_axes = _kind_axes(record, name)
        if kind_axes == "*":
            kind_axes = DATA[ranks[0]][1:]
        if not fits(user, kind_axes):
            raise ValueError(f"layout[{names[name]!r}]={user!r}: {like}'s {name} has axes {kind_axes!r}"
                             " (O out, I in, H W the kernel, C channels); give yours as those letters "
                             "in your order, 1 for an axis of size one (a bias (1, 1, 1, C): '111O'), "
                             "N for the batch (an h0 given per sample: 'NH')")
    return Like(like, layer, names, order, axes, data, ranks, gates, tuple(inputs),
                tuple(given.get(name, DATA[2]) for name in inputs))


def parameter_axes(like: Like, name: str, rank: int) -> tuple[str, str]:
    """(bpcheck's axes, the user's) of the kind's parameter ``name`` for samples of ``rank``."""
    kind = _kind_axes(LAYER_KINDS[like.layer.kind], name)
    if kind == "*":  # one sample's axes: the user's default is their own data layout's
        kind = DATA[rank][1:]
        return kind, like.axes.get(name, (like.data or DATA[rank])[1:])
    return kind, like.axes.get(name, kind)


def _kind_axes(record, name: str) -> str:
    """The axes of the kind's parameter ``name`` as bpcheck stores it (a key bias: O)."""
    if name == KEY_BIAS:
        return "O"
    return record.axes[record.parameters.index(name)] if record.axes else ""


def _kind_parameters(layer: Layer, parameters: object, inputs: tuple[str, ...]) -> tuple[str, ...]:
    """The kind's parameters the user names: attention's with a key bias (KEY_BIASED) where
    ``parameters`` names eight or maps one to it, and ``inputs=`` is given."""
    wanted = (isinstance(parameters, tuple | list) and len(parameters) == len(KEY_BIASED)) or (
        isinstance(parameters, dict) and any(v == KEY_BIAS or (isinstance(v, tuple) and KEY_BIAS in v)
                                             for v in parameters.values()))
    if layer.kind != "attention" or not layer.projections or not layer.bias or not wanted:
        return layer.parameters
    if not inputs:
        raise ValueError(f"parameters={parameters!r}: a key bias is checked with inputs= (your "
                         "inputs' names: ('x',) for self-attention, ('q', 'k', 'v') for query, key "
                         "and value)")
    return KEY_BIASED
