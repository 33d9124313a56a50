"""What a layer rule's error costs in practice (``bpcheck train --network``): a network of layers
(``manual.stack``) trained on a dataset split with a ``StackRule``, the derived layers or a
mutant.

The conventions are ``bpcheck.mlp.train``'s: every rule starts from the same initial weights
(``initial_weights``) and sees the same mini-batches in the same order — epoch e visits the
training samples in the order of permutation(seed + 1 + e) — and the curve holds, after each
epoch, the loss on the whole training set and the train and test accuracy.

Training runs the rule's own forward and backward (``manual.stack_network.sgd_step``). Dropout
draws a fresh mask for every batch from a generator seeded by (seed, epoch, batch), so every
rule sees the same masks. Evaluation (loss and accuracies) is torch's eval mode: dropout is
the identity, and batch norm normalises with its running statistics (updated by every step)
instead of the evaluated set's; every other layer runs the rule's own forward.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bpcheck.core.datasets import Split
from bpcheck.core.training import Curve, finite_params, training_curve
from bpcheck.layers.compare import DERIVED, StackRule
from bpcheck.layers.mutants import LAYER_MUTANTS, MUTANT_KINDS
from bpcheck.layers.problem import random_problem
from manual import stack_network
from manual.layers.normalisation import batch_norm_eval_forward
from manual.network import Overflow, quiet
from manual.spec import Array, Params
from manual.stack import PADDING, Layer, Stack, mask_shapes, walk

#: The default network for ``bpcheck train --network``: one convolution, pooling, a dense
#: read-out to the 10 classes, on digits' 8×8 images (``DIGITS_INPUT``).
DIGITS_CNN = "conv2d:8,k3,p1;relu;max_pool2d:k2;flatten;dense:10"
DIGITS_INPUT = (1, 8, 8)

#: The rules a network of layers trains with: the derived layers and every layer mutant.
STACK_RULES: dict[str, StackRule] = {DERIVED.name: DERIVED, **LAYER_MUTANTS}


def untouched_by(rule: StackRule, stack: Stack) -> str:
    """Why training the stack with this mutant is training it with the derived rule — its layer
    kind is not in the network — or "" (the derived rule, or a kind the network has)."""
    kind = MUTANT_KINDS.get(rule.name)
    if kind is None or any(layer.kind == kind for layer in walk(stack.layers)):
        return ""
    return f"the network has no {kind} layer, so {rule.name} is exactly {DERIVED.name} on it"


def digits_stack(layers: str = DIGITS_CNN, dtype: str = "float64") -> Stack:
    """The network ``layers`` on digits' (1, 8, 8) images, softmax cross-entropy on labels,
    averaged over the batch."""
    return Stack(layers, DIGITS_INPUT, loss="softmax-ce-labels", reduction="mean", dtype=dtype)


def initial_weights(stack: Stack, seed: int) -> tuple[Params, Params]:
    """(parameters, running statistics) as ``bpcheck.layers.problem.random_problem`` draws them:
    He scale by fan-in, γ ≈ 1, small biases; running statistics (0, 1)."""
    problem = random_problem(stack, 2, seed)
    return problem.params, problem.buffers


def samples(stack: Stack, X_cols: Array) -> Array:
    """Feature columns (F, N) as the network's samples (N, *input_shape) in its dtype."""
    n, size = X_cols.shape[1], int(np.prod(stack.input_shape))
    if X_cols.shape[0] != size:
        raise ValueError(f"the data have {X_cols.shape[0]} features per sample; the network's "
                         f"input {stack.input_shape} holds {size}")
    return np.ascontiguousarray(X_cols.T).reshape(n, *stack.input_shape).astype(stack.dtype)


def stack_targets(stack: Stack, labels: Array) -> Array:
    """Class labels for a loss on labels, else one-hot rows (N, C) in the network's dtype."""
    if stack.targets == "labels":
        return labels.astype(np.int64)
    return np.eye(stack.classes, dtype=stack.dtype)[labels]


def dropout_masks(stack: Stack, n: int, seed: int, epoch: int, batch: int) -> Params:
    """Each dropout layer's 0/1 mask for a batch of n, keeping 1 − p of units, drawn from a
    generator seeded by (seed, epoch, batch): the same for every rule. (A per-step loss's
    padding is the data's, not drawn.)"""
    rng = np.random.default_rng((seed, epoch, batch))
    drop = {layer.name: layer.p for layer in walk(stack.layers) if layer.kind == "dropout"}
    return {name: (rng.random(shape) >= drop[name]).astype(stack.dtype)
            for name, shape in mask_shapes(stack, n).items() if name in drop}


def evaluation_pairs(pairs: dict, buffers: Params) -> dict:
    """The rule's pairs in eval mode: dropout the identity, batch norm with running statistics."""
    def batch_norm(x: Array, params: Params, layer: Layer) -> tuple[Array, None]:
        running = {name: buffers[f"{layer}.{name}"] for name in ("running_mean", "running_var")}
        return batch_norm_eval_forward(x, params, layer, running), None

    def identity(x: Array, params: Params, layer: Layer, mask: Array | None = None) -> tuple[Array, None]:
        return x, None

    return pairs | {"batch_norm": (batch_norm, None), "dropout": (identity, None)}


def batch_masks(stack: Stack, padding: Array, seed: int, epoch: int, batch: int) -> Params:
    """Each dropout layer's mask (``dropout_masks``: the same for every rule), and the batch's
    ``padding`` for a per-step loss."""
    masks = dropout_masks(stack, len(padding), seed, epoch, batch)
    return masks | ({PADDING: padding.astype(stack.dtype)} if stack.per_step else {})


def evaluate(rule: StackRule, stack: Stack, params: Params, buffers: Params, x: Array,
             labels: Array, padding: Array | None = None) -> tuple[float, float]:
    """(loss, accuracy) of the network in eval mode on samples x with class ``labels``, over
    the real steps (``padding`` 1) for a per-step loss; a non-finite loss is reported as nan."""
    masks = {layer.name: None for layer in walk(stack.layers) if layer.kind == "dropout"}
    with quiet():
        out, _ = stack_network.forward(stack.layers, params, x, masks,
                                       evaluation_pairs(rule.pairs, buffers))
    real = None if padding is None else padding.astype(stack.dtype)
    loss = stack_network.loss_value(stack, out, stack_targets(stack, labels),
                                    {PADDING: real} if stack.per_step else None)
    right = np.argmax(out, axis=-1) == labels
    accuracy = np.sum(right * real) / np.sum(real) if stack.per_step else np.mean(right)
    return (loss if np.isfinite(loss) else float("nan")), float(accuracy)


#: Training or test data of ``train_data_curve``: (x, class labels, padding (N, T) or None).
Data = tuple[Array, Array, Array | None]


def train_data_curve(rule: StackRule, stack: Stack, params: Params, buffers: Params, train: Data,
                     test: Data, lr: float, epochs: int, batch: int, seed: int, dataset: str,
                     on_epoch: Callable[[], None] = lambda: None) -> Curve:
    """Mini-batch SGD with the rule's pairs from (params, buffers), which are not written to
    (``bpcheck.core.training.training_curve``); evaluation after each epoch: the module
    docstring."""
    (x, labels, padding), (x_test, labels_test, padding_test) = train, test
    y = stack_targets(stack, labels)
    state = {"params": params, "buffers": buffers}

    def step(chosen: Array, epoch: int, index: int) -> None:
        masks = (dropout_masks(stack, len(chosen), seed, epoch, index) if padding is None
                 else batch_masks(stack, padding[chosen], seed, epoch, index))
        _, state["params"], updated = stack_network.sgd_step(
            stack, state["params"], state["buffers"], x[chosen], y[chosen], lr, masks, rule.pairs)
        state["buffers"] = state["buffers"] | updated
        if not (finite_params(state["params"]) and finite_params(state["buffers"])):
            raise Overflow("the step")

    def scores() -> tuple[float, float, float]:
        now = (rule, stack, state["params"], state["buffers"])
        loss, train_accuracy = evaluate(*now, x, labels, padding)
        return loss, train_accuracy, evaluate(*now, x_test, labels_test, padding_test)[1]

    return training_curve(Curve(dataset, rule.name, lr), len(x), epochs, batch, seed, step, scores, on_epoch)


def train_stack_curve(rule: StackRule, stack: Stack, params: Params, buffers: Params, data: Split,
                      lr: float, epochs: int, batch: int, seed: int, dataset: str,
                      on_epoch: Callable[[], None] = lambda: None) -> Curve:
    """``train_data_curve`` on a dataset split's feature columns."""
    return train_data_curve(rule, stack, params, buffers, (samples(stack, data.X_train), data.y_train, None),
                            (samples(stack, data.X_test), data.y_test, None), lr, epochs, batch, seed,
                            dataset, on_epoch)
