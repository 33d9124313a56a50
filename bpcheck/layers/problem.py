"""One evaluation point of a network of layers: the network, parameters, running statistics,
a batch, dropout masks and a learning rate (``manual.stack``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpcheck.core.problem import fingerprint
from manual.spec import Params, check_learning_rate
from manual.stack import PADDING, Stack, buffer_shapes, mask_shapes, param_shapes, walk
from manual.stack_checks import check_stack_problem


@dataclass(frozen=True)
class StackProblem:
    """Validated on creation; arrays are in ``stack.dtype`` (labels are integers)."""

    stack: Stack
    params: Params
    x: np.ndarray
    y: np.ndarray
    masks: Params = field(default_factory=dict)
    buffers: Params = field(default_factory=dict)
    lr: float = 0.1

    def __post_init__(self) -> None:
        """Validated; array-likes (nested lists) are kept as the arrays validation made of them,
        as ``Problem`` keeps them (lossless, and the caller's data untouched)."""
        params, x, y, _ = check_stack_problem(self.stack, self.params, self.x, self.y, self.masks,
                                              self.buffers)
        check_learning_rate(self.lr)
        if any(params[name] is not value for name, value in self.params.items()):
            object.__setattr__(self, "params", params)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        for name in ("masks", "buffers"):  # validated above: their values convert exactly
            given = getattr(self, name)
            if isinstance(given, dict) and any(not isinstance(v, np.ndarray) for v in given.values()):
                object.__setattr__(self, name, {key: np.asarray(value) for key, value in given.items()})

    @property
    def n_samples(self) -> int:
        return self.x.shape[0]

    @property
    def n_params(self) -> int:
        return sum(int(np.size(value)) for value in self.params.values())

    def in_float64(self) -> StackProblem:
        """The same values, exactly, in float64."""
        if self.stack.dtype == "float64":
            return self
        cast = {name: np.asarray(v, np.float64) for name, v in self.params.items()}
        y = self.y if self.stack.targets == "labels" else np.asarray(self.y, np.float64)
        x = self.x if self.stack.tokens else np.asarray(self.x, np.float64)
        return StackProblem(self.stack.replace(dtype="float64"), cast, x, y,
                            self.masks, {name: np.asarray(v, np.float64) for name, v in self.buffers.items()},
                            self.lr)

    def fingerprint(self) -> str:
        """A digest of everything a witness's answer depends on (``bpcheck.mlp.problem.fingerprint``)."""
        return fingerprint(repr(self.stack), self.lr, self.params, self.masks, self.buffers,
                           {"x": self.x, "y": self.y})

    def arrays(self) -> tuple:
        """(stack, params, x, y, masks): what a witness's gradients take."""
        return self.stack, self.params, self.x, self.y, self.masks


def random_problem(stack: Stack, n: int, seed: int = 0, lr: float = 0.1, scale: float = 1.0) -> StackProblem:
    """Parameters with He-style scale (fan-in), x ~ N(0, scale²) (tokens uniform), labels
    uniform, values N(0, 1), probabilities uniform in [0, 1) (at every step for a per-step
    loss), running statistics (0, 1), masks keeping 1 − p of units (one at least), padding
    after a length uniform in 1…T per sample: a reproducible problem."""
    _check_draw(stack, n, seed, scale)
    rng, dtype = np.random.default_rng(seed), np.dtype(stack.dtype)
    params = {}
    for name, shape in param_shapes(stack).items():
        if name.endswith(".gamma"):
            params[name] = 1.0 + 0.1 * rng.standard_normal(shape)
        elif len(shape) > 1:
            params[name] = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
        else:
            params[name] = 0.1 * rng.standard_normal(shape)
    buffers = {name: np.zeros(shape) if name.endswith("mean") else np.ones(shape)
               for name, shape in buffer_shapes(stack).items()}
    probabilities = {layer.name: layer.p for layer in walk(stack.layers) if layer.kind == "dropout"}
    shapes = mask_shapes(stack, n)
    masks = {name: (rng.random(shape) >= probabilities[name]).astype(dtype)
             for name, shape in shapes.items() if name != PADDING}
    for mask in masks.values():  # keep one unit at least: a mask of zeros passes nothing back
        mask.reshape(-1)[rng.integers(mask.size)] = 1
    if PADDING in shapes:
        steps = shapes[PADDING][1]
        lengths = rng.integers(1, steps + 1, n)
        masks[PADDING] = (np.arange(steps) < lengths[:, None]).astype(dtype)
    x = (rng.integers(0, stack.layers[0].vocab, (n, *stack.input_shape)) if stack.tokens
         else scale * rng.standard_normal((n, *stack.input_shape)))
    targets = (n, *stack.shapes[-1][:-1])  # one target per sample, or per step
    y = (rng.integers(0, stack.classes, targets) if stack.targets == "labels"
         else rng.random((*targets, stack.classes)).astype(dtype) if stack.targets == "probabilities"
         else rng.standard_normal((*targets, stack.classes)).astype(dtype))
    cast = {name: v.astype(dtype) for name, v in params.items()}
    return StackProblem(stack, cast, x if stack.tokens else x.astype(dtype), y, masks,
                        {name: v.astype(dtype) for name, v in buffers.items()}, lr)


def _check_draw(stack: Stack, n: int, seed: int, scale: float) -> None:
    """A TypeError or ValueError naming the argument of ``random_problem`` that cannot be drawn."""
    if not isinstance(stack, Stack):
        raise TypeError(f"stack={stack!r:.80} is a {type(stack).__name__}; expected a Stack "
                        "(manual.stack.Stack('conv2d:4;relu;flatten;dense:3', (1, 8, 8)))")
    for name, value, least in (("n", n, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise ValueError(f"{name}={value!r} must be an int >= {least}")
    if isinstance(scale, bool) or not isinstance(scale, int | float | np.number) or not 0 < scale < np.inf:
        raise ValueError(f"scale={scale!r} must be a finite number > 0")
