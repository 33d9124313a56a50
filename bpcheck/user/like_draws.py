"""The networks a ``like=`` layer (``bpcheck.user.like``) is drawn in: the pinned layer itself,
as text, alone (then flatten) under ½Σ(out − y)², or after a conv or dense layer and a hidden
activation, before flatten and dense:3, under softmax cross-entropy. Every other layer differs
from the pinned one (``nobias`` where it would not), so the derived network runs the user's
pair exactly once (``is_yours``)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import strategies as st

from bpcheck.layers.strategies import HIDDEN, shapes
from manual.layer_kinds import Layer
from manual.stack import Stack, output_shapes
from manual.stack_text import parse_layers


def is_yours(layer, item: Layer) -> bool:
    """Whether ``item`` of a drawn network is the user's ``layer`` (a ``UserLayer``)."""
    if layer.declared is None:
        return item.kind == layer.name
    return replace(item, name="") == layer.declared.layer


def _other(text: str, pinned: Layer) -> str:
    """``text``, one layer, made to differ from ``pinned`` (``nobias``) if it is the same."""
    return f"{text},nobias" if parse_layers(text)[0] == pinned else text


def _fits(pinned: Layer, shape: tuple[int, ...]) -> bool:
    """Whether the pinned layer takes samples of ``shape`` (a pooling window within them)."""
    try:
        output_shapes((pinned,), shape)
    except ValueError:
        return False
    return True


@st.composite
def like_networks(draw, layer, dtype: str) -> Stack:
    """A network with ``layer`` (a ``UserLayer`` declared like=) in it (module docstring); its
    input shape drawn among the ranks it takes, and only shapes its ``fits`` takes."""
    from bpcheck.user.layer_check import USER_CHANNELS, USER_FEATURES  # a cycle

    like = layer.declared
    spatial = draw(st.sampled_from(like.ranks)) == 3
    shape = draw(shapes(spatial, USER_CHANNELS, USER_FEATURES).filter(lambda s: _fits(like.layer, s)))
    if not layer.fits_shape(shape):
        raise ValueError(f"your fits() refuses samples of shape {shape}")
    if not draw(st.booleans()):  # False, where Hypothesis shrinks to: the layer alone
        return Stack(f"{like.text};flatten", shape, loss="half-sse", reduction="sum", dtype=dtype)
    before_shape = draw(shapes(spatial, 3, 5))
    before = _other(f"conv2d:{shape[0]},k3,p1" if spatial else f"dense:{shape[0]}", like.layer)
    if spatial:
        before_shape = (before_shape[0], *shape[1:])
    text = f"{before};{draw(st.sampled_from(HIDDEN))};{like.text};flatten;{_other('dense:3', like.layer)}"
    return Stack(text, before_shape, dtype=dtype)
