"""What each kind of layer is, apart from its math: one record per kind (its options, parameters,
running statistics and input rank), and ``Layer``, one layer of a network (``manual.stack``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Shape = tuple[int, ...]


@dataclass(frozen=True)
class LayerKind:
    """What a layer kind is, apart from its math: its options, parameters and input rank."""

    name: str
    prefix: str  # parameter names are f"{prefix}{count}.{parameter}"
    options: str = ""  # letters its options may start with
    parameters: tuple[str, ...] = ()
    buffers: tuple[str, ...] = ()
    rank: int | tuple[int, ...] | None = None  # 3: (C, H, W) samples; 2: (T, D); 1: (F,); None: any
    width: bool = False  # takes an output width as its first option
    mask: bool = False  # takes an explicit 0/1 mask as input
    flags: tuple[str, ...] = ()  # words it takes as options (``causal``)
    gates: int = 0  # a recurrent layer's gates: W_ih and W_hh have gates·H rows
    #: a user's layer says its parameters' shapes and its output's, given one sample's input
    #: shape (built-in kinds: ``manual.stack``); None: no parameters, the same shape out
    parameter_shapes: Callable[[Shape], dict[str, Shape]] | None = None
    output_shape: Callable[[Shape], Shape] | None = None
    kinks: tuple[float, ...] = ()  # input values where a user's layer has no derivative
    #: each parameter's axes as stored (``manual.stack``): O out, I in (channels or features),
    #: H W the kernel, C channels; ``*`` one sample's axes (NCHW, (T, D) or (F,) without N).
    #: ``bpcheck.user.like`` reads a user's other layouts against them.
    axes: tuple[str, ...] = ()
    gate_names: str = ""  # a recurrent layer's gates in the order W_ih stacks them (torch's)


RECURRENT = ("W_ih", "W_hh", "b_ih", "b_hh", "h0")  # torch's layouts, and the initial state
RECURRENT_AXES = ("OI", "OI", "O", "O", "H")  # O: gates·H, I: D or H
SEQUENCE_KINDS = ("embedding", "rnn", "lstm", "gru", "attention")
LAYER_KINDS: dict[str, LayerKind] = {kind.name: kind for kind in (
    LayerKind("conv2d", "conv", "ksdpn", ("W", "b"), rank=3, width=True, axes=("OIHW", "O")),
    LayerKind("max_pool2d", "pool", "ks", rank=3),
    LayerKind("avg_pool2d", "pool", "ks", rank=3),
    LayerKind("batch_norm", "bn", "me", ("gamma", "beta"), ("running_mean", "running_var"), rank=(1, 3),
              axes=("C", "C")),
    LayerKind("layer_norm", "ln", "e", ("gamma", "beta"), axes=("*", "*")),
    LayerKind("dropout", "drop", "p", mask=True),
    LayerKind("flatten", "flat"),
    LayerKind("dense", "dense", "n", ("W", "b"), rank=(1, 2), width=True, axes=("OI", "O")),
    LayerKind("res", "res"),
    LayerKind("embedding", "emb", "v", ("W",), rank=1, width=True, axes=("IO",)),  # W (V, D): I tokens
    LayerKind("rnn", "rnn", "n", RECURRENT, rank=2, width=True, gates=1, axes=RECURRENT_AXES),
    LayerKind("lstm", "lstm", "n", (*RECURRENT, "c0"), rank=2, width=True, gates=4,
              axes=(*RECURRENT_AXES, "H"), gate_names="ifgo"),
    LayerKind("gru", "gru", "n", RECURRENT, rank=2, width=True, gates=3, axes=RECURRENT_AXES,
              gate_names="rzn"),
    LayerKind("attention", "attn", "hn", ("W_q", "b_q", "W_k", "W_v", "b_v", "W_o", "b_o"),
              rank=2, flags=("causal", "noproj"), axes=("OI", "O", "OI", "OI", "O", "OI", "O")),
)}
ACTIVATION = "activation"  # the kind of every elementwise activation layer


@dataclass(frozen=True)
class Layer:
    """One layer: its kind, its name (``conv1``) and options (defaults where unused)."""

    kind: str
    name: str = ""
    width: int = 0
    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (0, 0)  # (rows, columns); (0, 0): the kernel (pooling) or 1 (conv2d)
    padding: int = 0
    dilation: int = 1
    bias: bool = True
    p: float = 0.5
    momentum: float = 0.1
    eps: float = 1e-5
    activation: str = ""  # the full activation name, for kind == ACTIVATION
    body: tuple[Layer, ...] = ()  # a residual block's layers
    vocab: int = 0  # an embedding's number of tokens V
    heads: int = 1  # attention heads
    causal: bool = False  # attention: step t sees steps ≤ t only
    projections: bool = True  # attention: W_q, W_k, W_v, W_o (else Q = K = V = x, out = O)

    @property
    def parameters(self) -> tuple[str, ...]:
        names = () if self.kind == ACTIVATION else LAYER_KINDS[self.kind].parameters
        if self.kind == "attention" and not self.projections:
            return ()
        return tuple(name for name in names if self.bias or not (name == "b" or name.startswith("b_")))

    def __str__(self) -> str:
        return self.name


def stride(layer: Layer) -> tuple[int, int]:
    """The stride (rows, columns): as given, else the kernel for pooling (torch's default) and
    1 for conv2d."""
    if layer.stride != (0, 0):
        return layer.stride
    return (1, 1) if layer.kind == "conv2d" else layer.kernel


def output_size(size: int, kernel: int, stride: int, padding: int = 0, dilation: int = 1) -> int:
    """Outputs along one axis of a window layer: ⌊(size + 2p − d(k − 1) − 1)/s⌋ + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def walk(layers: tuple[Layer, ...]):
    """Every layer in order, residual blocks' bodies after the block itself."""
    for layer in layers:
        yield layer
        yield from walk(layer.body)


def check_options(layer: Layer) -> None:
    """A ValueError naming the layer unless its options are in range (however it was built)."""
    where = f"{layer.name or layer.kind} ({layer.kind})"
    if layer.kind in ("conv2d", "max_pool2d", "avg_pool2d"):
        if min(layer.kernel) < 1 or min(layer.stride) < 0 or layer.stride.count(0) == 1:
            raise ValueError(f"{where}: kernel {layer.kernel} and stride {layer.stride} must be ≥ 1")
        if layer.dilation < 1 or layer.padding < 0:
            raise ValueError(f"{where}: dilation must be ≥ 1 and padding ≥ 0")
        if layer.kind != "conv2d" and (layer.padding, layer.dilation) != (0, 1):
            raise ValueError(f"{where}: pooling takes no padding or dilation")
    if layer.kind == "embedding" and layer.vocab < 1:
        raise ValueError(f"{where}: the vocabulary must be ≥ 1 token: embedding:D,v10 for 10")
    if layer.heads < 1:
        raise ValueError(f"{where}: the number of heads must be ≥ 1")
    if layer.kind in ("conv2d", "dense", "embedding", "rnn", "lstm", "gru") and layer.width < 1:
        raise ValueError(f"{where}: the width must be ≥ 1")
    if layer.eps <= 0:
        raise ValueError(f"{where}: ε must be > 0 (it keeps σ = √(v + ε) away from 0)")
    if layer.kind == "dropout" and not 0 <= layer.p < 1:
        raise ValueError(f"{where}: the drop probability must be in [0, 1), not {layer.p}")
    if layer.kind == "batch_norm" and not 0 <= layer.momentum <= 1:
        raise ValueError(f"{where}: the momentum must be in [0, 1], not {layer.momentum}")
