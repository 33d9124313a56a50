"""Sequence models on generated tasks (``bpcheck train --task TASK [--network LAYERS]``): a network
of layers that starts with an embedding of tokens {0, 1}, trained with a ``StackRule`` — the
derived layers or a mutant — by ``bpcheck.layers.train``' conventions: the same initial weights
(``initial_weights``), epoch e visiting the training sequences in the order of
permutation(seed + 1 + e), dropout masks seeded by (seed, epoch, batch), evaluation in eval mode,
and a ``bpcheck.mlp.train.Curve`` per rule holding, after each epoch, the loss on the whole training
set and the train and test accuracy.

Tasks (``TASKS``), generated from the seed, nothing downloaded; tokens x_t ∈ {0, 1}:

* ``running-parity``: lengths ℓ uniform in 1…T, token 0 after step ℓ; the label at step t is
  y_t = (x_0 + … + x_t) mod 2 (0 on padded steps). The loss is taken at every step of (T, 2)
  outputs, on real steps only: m_t = [t < ℓ] is ``masks["padding"]`` and ``mean`` divides by
  Σ m. Accuracy counts real steps only: Σ_{n,t} m [argmax out_t = y_t] / Σ m.
* ``parity``: length T; one label per sequence, y = (x_0 + … + x_{T−1}) mod 2, on (2,)
  outputs. Attention has no positional encoding; its causal mask (step t sees steps ≤ t) and
  the flatten after it tell the positions apart.

Training and test sets are drawn independently (the test set after the training set, from one
generator): with T = 6 the 2⁶ = 64 parity strings all occur in both, so there the test accuracy
is the fit on fresh draws, not generalisation to unseen strings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bpcheck.core.training import Curve
from bpcheck.layers.compare import StackRule
from bpcheck.layers.train import train_data_curve
from manual.spec import Array, Params
from manual.stack import Stack

#: (tokens x (N, T), labels y (N, T) or (N,), padding (N, T) 0/1) of n sequences of length T.
Generator = Callable[[int, int, np.random.Generator], tuple[Array, Array, Array]]

#: Training and test sequences drawn for every task.
SIZES = (1000, 500)


def running_parity(n: int, length: int, rng: np.random.Generator) -> tuple[Array, Array, Array]:
    """Lengths ℓ uniform in 1…T; y_t = (x_0 + … + x_t) mod 2 on real steps; x, y = 0 after ℓ."""
    lengths = rng.integers(1, length + 1, n)
    padding = (np.arange(length) < lengths[:, None]).astype(np.int64)
    x = rng.integers(0, 2, (n, length)) * padding
    return x, np.cumsum(x, axis=1) % 2 * padding, padding


def parity(n: int, length: int, rng: np.random.Generator) -> tuple[Array, Array, Array]:
    """T tokens each; y = (Σ_t x_t) mod 2 per sequence; no padding (all 1)."""
    x = rng.integers(0, 2, (n, length))
    return x, x.sum(axis=1) % 2, np.ones_like(x)


@dataclass(frozen=True)
class Task:
    """A generated task and the defaults measured for it (``bpcheck train --task``)."""

    name: str
    generate: Generator
    per_step: bool  # a label at every step (outputs (T, 2)) or one per sequence ((2,))
    network: str
    length: int  # T
    lr: float
    epochs: int
    mutants: tuple[str, ...]  # trained beside the derived rule by default


#: Defaults measured with the derived rule (1000 training, 500 test sequences, batch 32): a tanh
#: RNN reaches test accuracy ≥ 0.95 on running parity of T = 20 by epoch 3–14 from seeds 0–11;
#: on parity of T = 6 a residual causal attention block by epoch 3–60 (the plain
#: ``attention:h2;flatten;dense:16;tanh;dense:2`` stays at chance from 2 of seeds 0–5).
TASKS: dict[str, Task] = {task.name: task for task in (
    Task("running-parity", running_parity, True, "embedding:8,v2;rnn:16;dense:2", 20, 0.3, 30,
         ("rnn_hidden_not_carried", "rnn_bptt_one_step")),
    Task("parity", parity, False, "embedding:8,v2;res(attention:h2,causal);flatten;dense:32;tanh;dense:2",
         6, 0.1, 60, ("softmax_diagonal", "embedding_assigned")),
)}


@dataclass(frozen=True)
class Sequences:
    """A task's training and test sets: tokens (N, T) int64, labels (N, T) or (N,), padding
    (N, T) 0/1 (1 = a real step)."""

    task: str
    x_train: Array
    y_train: Array
    padding_train: Array
    x_test: Array
    y_test: Array
    padding_test: Array


def generate(task: str, length: int, seed: int, sizes: tuple[int, int] = SIZES) -> Sequences:
    """The training then the test set of ``task`` from one generator seeded by ``seed``."""
    rng, make = np.random.default_rng(seed), TASKS[task].generate
    return Sequences(task, *make(sizes[0], length, rng), *make(sizes[1], length, rng))


def sequence_stack(layers: str, length: int, dtype: str = "float64") -> Stack:
    """The network ``layers`` on T tokens per sample, softmax cross-entropy on labels, averaged
    (over the real steps of a per-step loss)."""
    return Stack(layers, (length,), loss="softmax-ce-labels", reduction="mean", dtype=dtype)


def misfit(stack: Stack, task: str) -> str:
    """Why the network cannot learn ``task`` — it reads no tokens {0, 1}, has not 2 outputs, or
    labels each step where the task labels the sequence (or the reverse) — or ""."""
    if not stack.tokens or stack.layers[0].vocab < 2:
        return f"{task} feeds tokens 0 and 1: start with an embedding of 2 tokens or more (embedding:8,v2)"
    if stack.classes != 2:
        return f"the network ends with {stack.classes} outputs; {task} has 2 classes (end with dense:2)"
    if stack.per_step and not TASKS[task].per_step:
        return f"{task} labels the whole sequence: flatten before the last dense layer"
    if not stack.per_step and TASKS[task].per_step:
        return f"{task} labels every step: end with a dense layer acting at every step, no flatten"
    return ""


def train_sequence_curve(rule: StackRule, stack: Stack, params: Params, buffers: Params,
                         data: Sequences, lr: float, epochs: int, batch: int, seed: int,
                         on_epoch: Callable[[], None] = lambda: None) -> Curve:
    """``bpcheck.layers.train.train_data_curve`` on the task's sequences, padding included; the
    curve's dataset is the task."""
    return train_data_curve(rule, stack, params, buffers, (data.x_train, data.y_train, data.padding_train),
                            (data.x_test, data.y_test, data.padding_test), lr, epochs, batch, seed,
                            data.task, on_epoch)
