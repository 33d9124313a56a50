"""Perturbed copies of a network through its forward pass, layer by layer, for networks whose
recurrent layers have no batching rule (``torch.gru`` and its kin do not vmap): each layer runs
once per distinct (input, own parameters) among the copies — a projection's copies perturb one
array after another, so most copies share both. Per layer, the distinct pairs run

* in one ``torch.func.vmap`` call where the layer vmaps (all but recurrent layers and a user's);
* in one call per distinct set of parameters, the inputs side by side on the batch axis, where
  the layer treats samples apart (recurrent layers);
* one at a time otherwise (a user's layer).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

from manual.spec import Layer, walk

Tensors = dict[str, torch.Tensor]
#: (layer, input, its own tensors by full name) → output
Run = Callable[[Layer, torch.Tensor, Tensors], torch.Tensor]


def _distinct(rows: list[bytes]) -> tuple[list[int], list[int]]:
    """(the index of each distinct row's first copy, each row's place among the distinct)."""
    first: dict[bytes, int] = {}
    reps, which = [], []
    for i, row in enumerate(rows):
        if row not in first:
            first[row] = len(reps)
            reps.append(i)
        which.append(first[row])
    return reps, which


def through_layers(layers: tuple[Layer, ...], tensors: Tensors, data: torch.Tensor, run: Run,
                   vmaps: Callable[[Layer], bool], per_sample: Callable[[Layer], bool]) -> torch.Tensor:
    """Every copy's output (``tensors``: every parameter, and ``x`` unless it is ``data`` for
    all, with a leading axis of K copies); ``vmaps(layer)``: whether ``run`` of it vmaps,
    ``per_sample(layer)``: whether its samples are independent (then copies that share its
    parameters run as one batch)."""
    copies = len(next(iter(tensors.values())))
    rows = {name: value.numpy().reshape(copies, -1) for name, value in tensors.items()}  # for the keys
    if "x" in tensors:
        reps, which = _distinct([row.tobytes() for row in rows["x"]])
        xs = tensors["x"][reps]
    else:
        xs, which = data[None], [0] * copies
    for layer in layers:
        inner = {own.name for own in walk((layer,))}
        names = [name for name in tensors if name != "x" and name.partition(".")[0] in inner]
        keys = [b"".join(rows[name][k].tobytes() for name in names) for k in range(copies)]
        reps, items = _distinct([which[k].to_bytes(8, "little") + keys[k] for k in range(copies)])
        own = {name: tensors[name][reps] for name in names}
        xs = _run_items(layer, xs[[which[k] for k in reps]], own, [keys[k] for k in reps], run,
                        vmaps(layer), per_sample(layer))
        which = items
    return xs[which]


def _run_items(layer: Layer, inputs: torch.Tensor, own: Tensors, keys: list[bytes], run: Run,
               vmaps: bool, per_sample: bool) -> torch.Tensor:
    """The layer's output for each (input, own parameters) on the leading axes of ``inputs``
    and ``own`` (``keys``: the parameters' bytes, to find those that share them)."""
    if len(keys) == 1:
        return run(layer, inputs[0], {name: value[0] for name, value in own.items()})[None]
    if vmaps:
        with warnings.catch_warnings():  # scaled dot-product attention's kernel runs copy by copy
            warnings.filterwarnings("ignore", "There is a performance drop", UserWarning)
            return torch.func.vmap(lambda x, t: run(layer, x, t))(inputs, own)
    if not per_sample:
        return torch.stack([run(layer, inputs[i], {name: value[i] for name, value in own.items()})
                            for i in range(len(keys))])
    reps, group = _distinct(keys)
    outputs: list[torch.Tensor] = [inputs[0]] * len(keys)
    for g, rep in enumerate(reps):
        members = [i for i in range(len(keys)) if group[i] == g]
        out = run(layer, inputs[members].reshape(-1, *inputs.shape[2:]),
                  {name: value[rep] for name, value in own.items()})
        for i, each in zip(members, out.reshape(len(members), -1, *out.shape[1:]), strict=True):
            outputs[i] = each
    return torch.stack(outputs)
