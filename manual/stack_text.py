"""A network's layers as text and back: ``conv2d:8,k3,s1,p1;relu;max_pool2d:k2;flatten;dense:10``
(the grammar is in ``manual.stack``'s docstring)."""

from __future__ import annotations

import difflib
import math
from dataclasses import replace
from typing import Any

from manual.layer_kinds import ACTIVATION, LAYER_KINDS, Layer, check_options, stride
from manual.vocabulary import ACTIVATIONS, parse_activation


def _number(text: str, layer: str, option: str, kind: type = int) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{layer}: option {option!r} needs a number") from None
    if (isinstance(value, int) and value < (0 if option.startswith("p") else 1)) or not math.isfinite(value):
        raise ValueError(f"{layer}: option {option!r} is out of range")
    return value


def _parse_layer(text: str) -> Layer:
    """One ``kind[:options]`` item (no residual blocks)."""
    text = text.strip()
    base = text.partition(":")[0]
    if base in ACTIVATIONS:
        parse_activation(text, f"layer {text!r}")
        if ACTIVATIONS[base].output_only:
            raise ValueError(f"layer {text!r}: {base} mixes units; end the network with a loss "
                             "that includes it (softmax-ce-labels) instead")
        return Layer(ACTIVATION, activation=text)
    if base not in LAYER_KINDS:
        names = [*LAYER_KINDS, *(name for name, record in ACTIVATIONS.items() if not record.output_only)]
        close = difflib.get_close_matches(base.lower(), names, n=1)
        raise ValueError(f"layer {text!r}: unknown layer {base!r}" + (f" (did you mean {close[0]!r}?)"
                         if close else "") + f"; expected one of {names}")
    kind, options, fields = LAYER_KINDS[base], text.partition(":")[2], {}
    items = [item.strip() for item in options.split(",")] if options else []
    if kind.width:
        if not items or not items[0].isdigit():
            raise ValueError(f"layer {text!r}: {base} needs its width first, e.g. {base}:8")
        fields["width"] = _number(items.pop(0), text, "width")
    given: dict[str, str] = {}  # option letter (or flag) → the item that set it
    for item in items:
        letter, value = item[:1], item[1:]
        key = "n" if item == "nobias" else item if item in kind.flags else letter
        if key in given:
            raise ValueError(f"layer {text!r}: {given[key]!r} and {item!r} set the same option; give it once")
        given[key] = item
        if item == "nobias" and "n" in kind.options:
            fields["bias"] = False
        elif item in kind.flags:
            fields["causal" if item == "causal" else "projections"] = item == "causal"
        elif letter and letter in kind.options and letter != "n":
            if letter in "ks":
                sizes = value.split("x")
                if len(sizes) > 2:
                    raise ValueError(f"layer {text!r}: {item!r} is {letter}3 or {letter}2x3 (rows x columns)")
                pair = [_number(size, text, item) for size in sizes]
                fields["kernel" if letter == "k" else "stride"] = (pair[0], pair[-1])
            else:
                key = {"p": "padding" if base == "conv2d" else "p", "d": "dilation",
                       "m": "momentum", "e": "eps", "v": "vocab", "h": "heads"}[letter]
                numeric = float if key in ("p", "momentum", "eps") else int
                fields[key] = _number(value, text, item, numeric)
        else:
            raise ValueError(f"layer {text!r}: unknown option {item!r}")
    if base == "conv2d":
        fields.setdefault("kernel", (3, 3))
    if base in ("conv2d", "max_pool2d", "avg_pool2d"):  # the stride spelled out: 1, or the kernel's
        fields.setdefault("stride", (1, 1) if base == "conv2d" else fields.get("kernel", (2, 2)))
    layer = Layer(base, **fields)
    check_options(layer)
    return layer


def _split(text: str) -> list[str]:
    """Split on ``;`` outside parentheses."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            raise ValueError(f"network {text!r}: unbalanced parentheses")
        if char == ";" and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"network {text!r}: unbalanced parentheses")
    return [*items, text[start:]]


def parse_layers(text: str) -> tuple[Layer, ...]:
    """``"conv2d:8,k3;relu;res(dense:4;tanh)"`` → layers, unnamed (``name_layers`` names them)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"network={text!r}: expected layers separated by ';', e.g. "
                         "'conv2d:8,k3,p1;relu;max_pool2d:k2;flatten;dense:10'")
    layers = []
    for item in _split(text):
        item = item.strip()
        if item.startswith("res(") and item.endswith(")"):
            layers.append(Layer("res", body=parse_layers(item[4:-1])))
        elif not item:
            raise ValueError(f"network {text!r}: an empty layer between ';'")
        else:
            layers.append(_parse_layer(item))
    return tuple(layers)


def name_layers(layers: tuple[Layer, ...], counts: dict[str, int] | None = None
                ) -> tuple[Layer, ...]:
    """Each layer named by its prefix and its count among its kind, in order (``conv1``,
    ``bn2``, activations by their base name: ``relu1``), residual bodies included."""
    counts = {} if counts is None else counts
    named = []
    for layer in layers:
        prefix = (parse_activation(layer.activation)[0] if layer.kind == ACTIVATION
                  else LAYER_KINDS[layer.kind].prefix)
        counts[prefix] = counts.get(prefix, 0) + 1
        body = name_layers(layer.body, counts) if layer.body else ()
        named.append(replace(layer, name=f"{prefix}{counts[prefix]}", body=body))
    return tuple(named)


def describe_layers(layers: tuple[Layer, ...]) -> str:
    """Layers back to text: ``conv2d:8,k3x3,s1,p1,d1;relu;…``."""
    parts = []
    for layer in layers:
        kind = LAYER_KINDS.get(layer.kind)
        if layer.kind == ACTIVATION:
            parts.append(layer.activation)
        elif kind is None or kind.output_shape is not None:  # a user's layer: its name alone
            parts.append(layer.kind)
        elif layer.kind == "res":
            parts.append(f"res({describe_layers(layer.body)})")
        else:
            options = [str(layer.width)] if kind.width else []
            window = [_pair("k", layer.kernel), _pair("s", stride(layer))]
            options += {"conv2d": [*window,
                                   f"p{layer.padding}", f"d{layer.dilation}"],
                        "max_pool2d": window,
                        "batch_norm": [f"m{layer.momentum:g}", f"e{layer.eps:g}"],
                        "layer_norm": [f"e{layer.eps:g}"], "dropout": [f"p{layer.p:g}"],
                        "embedding": [f"v{layer.vocab}"],
                        "attention": [f"h{layer.heads}", *(["causal"] if layer.causal else []),
                                      *([] if layer.projections else ["noproj"])]}.get(
                            "max_pool2d" if layer.kind == "avg_pool2d" else layer.kind, [])
            options += [] if layer.bias or "n" not in kind.options else ["nobias"]
            parts.append(layer.kind + (":" + ",".join(options) if options else ""))
    return ";".join(parts)


def _pair(letter: str, pair: tuple[int, int]) -> str:
    """``k3`` for (3, 3), ``k2x3`` for (2, 3)."""
    return f"{letter}{pair[0]}" if pair[0] == pair[1] else f"{letter}{pair[0]}x{pair[1]}"
