r"""A user's conventions, and the exact conversions between them and bpcheck's own.

bpcheck's parameters are a dict ``W1, (b1,) W2, …`` with every W_k of shape (out, in) — plus
the bias node's column last — and every b_k of shape (n,) (``manual.spec``). A user's code
holds the same numbers differently; ``Conventions`` says how, and its two functions move
values across without changing a bit (transposes, reshapes and column moves only):

* ``params``: the container, a template whose leaves are bpcheck's names. ``"{k}"`` stands for
  the layer number: a list of such names repeats for every layer, a dict's keys are expanded
  alike. ``"dict"`` is ``{"W{k}": "W{k}", "b{k}": "b{k}"}``, ``"list"`` is
  ``["W{k}", "b{k}"]`` (W1, b1, W2, b2, …), ``"weights,biases"`` is ``(["W{k}"], ["b{k}"])`` and
  ``"biases,weights"`` is ``(["b{k}"], ["W{k}"])``; with a bias node there are no b names;
* ``weights``: ``out_in`` (W z-rows by input columns: z = W x) or ``in_out`` (z = x W);
* ``bias``: ``vector`` (n,), ``column`` (n, 1), ``row`` (1, n), or a bias node whose weights
  are W's ``node_last`` or ``node_first`` input (a column of an out × in W, a row of in × out);
* ``data``: ``samples_as_rows`` (N, F) or ``samples_as_columns`` (F, N);
* ``targets``: ``as_loss`` (what the loss takes), ``labels`` (N,) ints, or ``one_hot``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from manual.spec import Params, Spec, format_shape, one_of, param_shapes

PARAMS_SHORTHANDS = ("dict", "list", "weights,biases", "biases,weights")
WEIGHTS = ("out_in", "in_out")
BIASES = ("vector", "column", "row", "node_last", "node_first")
DATA = ("samples_as_rows", "samples_as_columns")
TARGETS = ("as_loss", "labels", "one_hot")


@dataclass(frozen=True)
class Conventions:
    """How a user's code holds parameters, data and targets (module docstring)."""

    params: Any = "dict"
    weights: str = "out_in"
    bias: str = "vector"
    data: str = "samples_as_rows"
    targets: str = "as_loss"

    def __post_init__(self) -> None:
        if isinstance(self.params, str):
            one_of(self.params, PARAMS_SHORTHANDS, "params")
        one_of(self.weights, WEIGHTS, "weights")
        one_of(self.bias, BIASES, "bias")
        one_of(self.data, DATA, "data")
        one_of(self.targets, TARGETS, "targets")
        depth = self.fixed_depth or 2
        names = [name for name, _ in _paths(self.template(depth), "params")]  # a malformed one fails
        expected = [f"{kind}{k}" for k in range(1, depth + 1) for kind in ("W" if self.node else "Wb")]
        if sorted(names) != sorted(expected):
            layers = f"{depth} layers" if self.fixed_depth else "two layers (with {k} = 1, 2)"
            raise ValueError(f"params={self.params!r} names {sorted(names)} for {layers}; with "
                             f"bias={self.bias!r} expected each of {expected} once (a template's "
                             "values are bpcheck's names W1, b1, …, or W{k}, b{k} for every layer; "
                             "its keys are yours)")

    @property
    def fixed_depth(self) -> int | None:
        """The number of layers a template without "{k}" names (None: it repeats per layer)."""
        if isinstance(self.params, str) or "{k}" in repr(self.params):
            return None
        names = [name for name, _ in _paths(self.params, "params")]
        return max((int(name[1:]) for name in names if name[1:].isdigit()), default=0) or None

    @property
    def node(self) -> bool:
        """Whether biases are a bias node's weights (no b_k)."""
        return self.bias.startswith("node")

    @property
    def bias_style(self) -> str:
        """bpcheck's bias style for these conventions."""
        return "node" if self.node else "vector"

    @property
    def layout(self) -> str:
        """bpcheck's data layout for these conventions."""
        return "cols" if self.data == "samples_as_columns" else "rows"

    def template(self, depth: int) -> Any:
        """The params template with every "{k}" expanded for ``depth`` layers."""
        return _expand(_shorthand(self.params, self.node), depth)

    def user_shape(self, name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape the user holds bpcheck's parameter ``name`` of ``shape`` in."""
        if name[0] == "W":
            return shape if self.weights == "out_in" else shape[::-1]
        return {"vector": shape, "column": (shape[0], 1), "row": (1, shape[0])}[self.bias]

    def to_user(self, name: str, value: np.ndarray) -> np.ndarray:
        """bpcheck's ``name`` → the user's array (a new, writeable array)."""
        if name[0] == "W" and self.bias == "node_first":
            value = np.roll(value, 1, axis=1)
        if name[0] == "W":
            return np.array(value if self.weights == "out_in" else value.T, order="C")
        return np.array(value).reshape(self.user_shape(name, value.shape))

    def from_user(self, name: str, value: np.ndarray) -> np.ndarray:
        """The user's array → bpcheck's ``name`` (shape checked by the caller)."""
        if name[0] == "W":
            value = value if self.weights == "out_in" else value.T
            return np.roll(value, -1, axis=1) if self.bias == "node_first" else value
        return value.reshape(-1)

    def params_to_user(self, spec: Spec, params: Params) -> Any:
        """bpcheck's parameters in the user's container and shapes (fresh arrays)."""
        return _build(self.template(spec.depth), lambda name: self.to_user(name, params[name]))

    def params_from_user(self, spec: Spec, value: Any, what: str) -> Params:
        """A value the user's code gave back in its container → bpcheck's dict; a wrong
        container, shape or dtype, or a NaN, is a ``ValueError``/``TypeError`` that names where
        (``what`` is the root of the paths it names, e.g. "returned")."""
        shapes, found = param_shapes(spec), {}
        for name, path, leaf in _walk(self.template(spec.depth), value, what):
            expected = self.user_shape(name, shapes[name])
            array = np.asarray(leaf) if not isinstance(leaf, np.ndarray) else leaf
            if not np.issubdtype(array.dtype, np.floating):
                raise TypeError(f"{path} ({name}) has dtype {array.dtype}; expected {spec.dtype}")
            if np.finfo(array.dtype).eps > np.finfo(spec.dtype).eps:
                raise TypeError(f"{path} ({name}) has dtype {array.dtype}, less precise than "
                                f"the {spec.dtype} it was given")
            if array.shape != expected:
                raise ValueError(f"{path} ({name}) has shape {format_shape(array.shape)}; "
                                 f"expected {format_shape(expected)} ({self.describe(name)})")
            if not np.all(np.isfinite(array)):
                bad = ~np.isfinite(array)
                first = tuple(int(i) for i in np.argwhere(bad)[0]) if array.ndim else ()
                kind = "NaN" if np.isnan(array).any() else "Inf"
                raise ValueError(f"{path} ({name}) contains {kind}: {int(bad.sum())} of {array.size} "
                                 f"entries are not finite, the first at index {first}")
            found[name] = self.from_user(name, array.astype(spec.dtype, copy=True))
        return {name: found[name] for name in shapes}

    def locate(self, spec: Spec, name: str, where: tuple[int, ...]) -> str:
        """Where entry ``where`` of bpcheck's ``name`` sits in the user's container, e.g.
        ``params['W2'][0, 1]`` or ``params[1][0][2, 0]``."""
        shape = param_shapes(spec)[name]
        flat = int(np.ravel_multi_index(where, shape))
        position = np.argwhere(self.to_user(name, np.arange(int(np.prod(shape))).reshape(shape)) == flat)[0]
        path = next(path for leaf, path in _paths(self.template(spec.depth), "params") if leaf == name)
        return f"{path}[{', '.join(str(int(i)) for i in position)}]"

    def describe(self, name: str) -> str:
        """What the user's array for ``name`` is, in words."""
        if name[0] == "W":
            rows = "out × in" if self.weights == "out_in" else "in × out"
            return rows + (f", bias node {self.bias[5:]}" if self.node else "")
        return f"bias as a {self.bias}"


def _shorthand(params: Any, node: bool) -> Any:
    if not isinstance(params, str):
        return params
    if node:
        return {"dict": {"W{k}": "W{k}"}, "list": ["W{k}"]}.get(params, ["W{k}"])
    return {"dict": {"W{k}": "W{k}", "b{k}": "b{k}"}, "list": ["W{k}", "b{k}"],
            "weights,biases": (["W{k}"], ["b{k}"]), "biases,weights": (["b{k}"], ["W{k}"])}[params]


def _expand(template: Any, depth: int) -> Any:
    """Every "{k}" expanded: a list of k-names repeats per layer, a dict's k-keys too."""
    layers = range(1, depth + 1)
    if isinstance(template, str):
        return template
    if isinstance(template, dict):
        out = {}
        for key, leaf in template.items():
            repeated = isinstance(key, str) and "{k}" in key
            for k in layers if repeated else (None,):
                out[key.format(k=k) if repeated else key] = _expand(
                    leaf.format(k=k) if repeated and isinstance(leaf, str) else leaf, depth)
        return out
    if isinstance(template, list | tuple):
        if template and all(isinstance(item, str) and "{k}" in item for item in template):
            return [item.format(k=k) for k in layers for item in template]
        return type(template)(_expand(item, depth) for item in template)
    raise TypeError(f"params: {template!r}: expected a name, a list, a tuple or a dict")


def nested_items(value: Any, path: str = "params"):
    """(path, leaf) of every leaf of nested dicts, lists and tuples: ``params[1][0]``,
    ``params['W1']``."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from nested_items(item, f"{path}[{key!r}]")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from nested_items(item, f"{path}[{i}]")
    else:
        yield path, value


def _paths(template: Any, path: str):
    """(name, path) of every leaf of a template, each a name."""
    for where, leaf in nested_items(template, path):
        if not isinstance(leaf, str):
            raise TypeError(f"{where}={leaf!r}: expected a name, a list, a tuple or a dict")
        yield leaf, where


def _build(template: Any, leaf: Callable[[str], np.ndarray]) -> Any:
    if isinstance(template, str):
        return leaf(template)
    if isinstance(template, dict):
        return {key: _build(value, leaf) for key, value in template.items()}
    return [_build(item, leaf) for item in template] if isinstance(template, list) else tuple(
        _build(item, leaf) for item in template)


def _walk(template: Any, value: Any, path: str):
    """(name, path, user leaf) for every leaf of ``template``, reading ``value`` alongside."""
    if isinstance(template, str):
        yield template, path, value
    elif isinstance(template, dict):
        if not hasattr(value, "keys"):
            raise TypeError(f"{path} is {type(value).__name__}; expected a dict with keys {list(template)}")
        missing = [key for key in template if key not in value]
        unknown = [key for key in value.keys() if key not in template]
        if missing or unknown:  # an unknown key may be a parameter misnamed: nothing is ignored
            said = ", ".join(f"{what} {keys}" for what, keys in (("missing", missing), ("unknown", unknown))
                             if keys)
            raise ValueError(f"{path} has keys {list(value.keys())}; expected {list(template)} ({said})")
        for key, leaf in template.items():
            yield from _walk(leaf, value[key], f"{path}[{key!r}]")
    else:
        if isinstance(value, np.ndarray) or not isinstance(value, list | tuple):
            raise TypeError(f"{path} is {type(value).__name__}; expected a list of {len(template)}")
        if len(value) != len(template):
            raise ValueError(f"{path} has {len(value)} items; expected {len(template)} "
                             f"({', '.join(name for name, _ in _paths(template, ''))})")
        for i, (leaf, item) in enumerate(zip(template, value, strict=True)):
            yield from _walk(leaf, item, f"{path}[{i}]")
