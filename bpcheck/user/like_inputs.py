"""Several named inputs: a ``like="attention:..."`` layer whose query, key and value are separate
arrays, as cross-attention is written, declared with ``inputs=``::

    UserLayer("cross", forward, backward, like="attention:h2", inputs=("q", "k", "v"),
              parameters=("Wq", "bq", "Wk", "Wv", "bv", "Wo", "bo"), layout={"Wq": "IO", …})

``inputs`` names the query, key and value in that order; two names are the query and a memory
that is both key and value (``("x", "memory")``). Each input may have its own layout
(``layout={"q": "NDT"}``), the output is in the query's. Calling styles (``inputs_pair``), told
apart by how many positional parameters each function takes:

* ``forward(q, k, v, params)`` or ``forward({"q": q, "k": k, "v": v}, params)``, returning
  ``(out, cache)`` or ``out`` alone;
* ``backward(dout, cache)``, or functional ``backward(dout, q, k, v, params)`` /
  ``backward(dout, inputs, params)``, returning ``(dq, dk, dv, grads)``, ``(dq, dk, dv, dWq, …)``
  in the order of ``parameters=``, or ``({"q": dq, …}, grads)``.

The check itself (several inputs drawn, each gradient reported under its own name) is
``bpcheck.user.inputs_check``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bpcheck.user.styles import _positional

#: The kinds that take several inputs, and how many.
SEVERAL = {"attention": (2, 3)}
#: attention's roles, in the order ``inputs=`` names them.
ROLES = ("query", "key", "value")


def read_inputs(inputs: object, like: str | None, parameters: object) -> tuple[str, ...]:
    """``inputs=`` checked: 1–3 distinct identifiers, several only for a kind in SEVERAL, none
    a parameter's name; a ValueError or TypeError naming the argument."""
    if inputs is None:
        return ()
    if not (isinstance(inputs, tuple | list) and inputs and all(isinstance(n, str) for n in inputs)):
        raise TypeError(f"inputs={inputs!r}: expected your inputs' names as a tuple of strings, e.g. "
                        "('q', 'k', 'v') for attention's query, key and value")
    kind = (like or "").partition(":")[0].strip()
    counts = SEVERAL.get(kind, ())
    if like is None or (len(inputs) > 1 and len(inputs) not in counts):
        raise ValueError(f"inputs={tuple(inputs)!r}: several named inputs take like='attention:...' "
                         "with 2 names (query, then key = value) or 3 (query, key, value)"
                         + (f"; {like!r} takes one input" if like else ""))
    bad = [n for n in inputs if not n.isidentifier()]
    if bad or len(set(inputs)) != len(inputs):
        raise ValueError(f"inputs={tuple(inputs)!r}: name each input once, as an identifier")
    names = set(parameters.values() if isinstance(parameters, dict) else parameters or ())
    names |= set(parameters) if isinstance(parameters, dict) else set()
    if clash := sorted(names & set(inputs)):
        raise ValueError(f"inputs={tuple(inputs)!r}: {clash} also names a parameter; give inputs "
                         "and parameters different names")
    return tuple(inputs)


def roles(inputs: tuple[str, ...]) -> tuple[str, str, str]:
    """The user's input names of the query, key and value (two names: key = value; one: all
    three, self-attention)."""
    return (inputs[0], inputs[min(1, len(inputs) - 1)], inputs[-1])


def check_style(name: str, inputs: tuple[str, ...], forward: Callable, backward: Callable) -> None:
    """A TypeError naming forward= or backward= whose positional parameters fit no style."""
    k, listed = len(inputs), ", ".join(inputs)
    if _positional(forward) not in (k + 1, 2):
        raise TypeError(f"forward={getattr(forward, '__name__', forward)!r} of {name} takes "
                        f"{_positional(forward)} positional parameters; with inputs={inputs!r} expected "
                        f"forward({listed}, params) or forward(inputs, params)")
    if _positional(backward) not in (2, 3, k + 2):
        raise TypeError(f"backward={getattr(backward, '__name__', backward)!r} of {name} takes "
                        f"{_positional(backward)} positional parameters; expected backward(dout, cache), "
                        f"backward(dout, {listed}, params) or backward(dout, inputs, params)")


def inputs_pair(inputs: tuple[str, ...], order: tuple[str, ...], forward: Callable,
                backward: Callable) -> tuple[Callable, Callable]:
    """The user's code as ``forward(arrays, params) → (out, cache)`` and
    ``backward(dout, cache) → ({input: gradient}, {parameter: gradient})`` or a string saying
    what its result lacks (module docstring); ``arrays`` by input name."""
    positional_forward = _positional(forward) == len(inputs) + 1
    backward_style = _positional(backward)

    def pair_forward(arrays: dict, params: dict) -> tuple[object, tuple]:
        given = [arrays[n] for n in inputs] if positional_forward else [dict(arrays)]
        result = forward(*given, params)
        if isinstance(result, tuple) and len(result) == 2:
            return result[0], (result[1], arrays, params)
        return result, (None, arrays, params)

    def pair_backward(dout: np.ndarray, cache: tuple) -> object:
        own, arrays, params = cache
        if backward_style == 2:
            result = backward(dout, own)
        elif backward_style == 3:
            result = backward(dout, dict(arrays), params)
        else:
            result = backward(dout, *(arrays[n] for n in inputs), params)
        return named(result, inputs, order)

    return pair_forward, pair_backward


def named(result: object, inputs: tuple[str, ...], order: tuple[str, ...]) -> tuple[dict, dict] | str:
    """A backward's result as ({input: gradient}, {parameter: gradient}), or what is wrong with it."""
    k = len(inputs)
    expected = (f"expected (d{', d'.join(inputs)}, grads) with grads a dict, (d{', d'.join(inputs)}, "
                f"{', '.join('d' + p for p in order)}) in the order of parameters=, or "
                f"({{{', '.join(repr(n) + ': …' for n in inputs)}}}, grads)")
    if isinstance(result, tuple) and len(result) == 2 and all(isinstance(r, dict) for r in result):
        if set(result[0]) != set(inputs):
            return (f"backward's input gradients have keys {sorted(result[0])}; expected one for each "
                    f"input {list(inputs)}")
        return dict(result[0]), dict(result[1])
    if isinstance(result, tuple) and len(result) == k + 1 and isinstance(result[-1], dict):
        return dict(zip(inputs, result[:k], strict=True)), dict(result[-1])
    if isinstance(result, tuple) and len(result) == k + len(order) and order:
        return dict(zip(inputs, result[:k], strict=True)), dict(zip(order, result[k:], strict=True))
    if isinstance(result, tuple) and len(result) == k and not order:
        return dict(zip(inputs, result, strict=True)), {}
    size = f" of {len(result)}" if isinstance(result, tuple) else ""
    return f"backward returned a {type(result).__name__}{size}; {expected}"
