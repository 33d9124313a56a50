"""What ``bpcheck train`` trains: a ``Run`` for each (dataset or task, rule, η), each from the
same start; the MLP on iris and digits (``bpcheck.mlp.train``), a network of layers on digits
(``bpcheck.layers.train``) or a sequence model on a generated task (``bpcheck.layers.train_sequences``).
A network the options do not describe is a ValueError naming the option."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from bpcheck.core.datasets import split
from bpcheck.core.training import Curve
from bpcheck.layers.train import STACK_RULES, digits_stack, initial_weights, train_stack_curve, untouched_by
from bpcheck.layers.train_sequences import SIZES, generate, misfit, sequence_stack, train_sequence_curve
from bpcheck.mlp.memory import check_memory, mlp_memory
from bpcheck.mlp.train import seed_program_spec, train_curve
from manual.initialisers import truncated_normal
from manual.rules import RULES
from manual.stack import Stack
from manual.stack_checks import check_batch_norm_counts, memory_bound


@dataclass(frozen=True)
class Run:
    """One curve to train: ``train(on_epoch)`` returns it."""

    dataset: str
    network: str  # as the table shows it
    rule: str
    lr: float
    train: Callable[[Callable[[], None]], Curve]


def mlp_runs(args: argparse.Namespace) -> tuple[list[Run], list[str]]:
    """Every (dataset, rule, η) of the MLP, and the rules that cannot run; ValueError for a
    network the options do not describe."""
    runs, skipped = [], []
    activations = tuple(args.activations.split(",")) if args.activations else None
    for name in args.datasets.split(","):
        data = split(name, args.seed)
        sizes = (data.features, *(args.hidden or ()), data.classes)  # the seed's H is small
        check_memory(mlp_memory(sizes, data.X_train.shape[1]), f"--hidden on {name}")
        try:
            spec = seed_program_spec(data, args.hidden, args.seed, activations, args.loss or "half-sse")
        except (ValueError, TypeError) as error:  # Spec's words name its field: say the option
            option = "--hidden" if str(error).startswith("sizes") else "--activations"
            raise type(error)(f"{option}: {error}") from None
        start = truncated_normal(spec, np.random.default_rng(args.seed))
        for rule in (RULES[r] for r in args.rules.split(",")):
            if rule.unsupported_reason(spec):
                skipped.append(f"{rule.name} on {name}: {rule.unsupported_reason(spec)}")
                continue
            runs += [Run(name, "-".join(map(str, spec.sizes)), rule.name, lr,
                         partial(train_curve, rule, spec, start, data, lr, args.epochs, args.batch, args.seed,
                                 name))
                     for lr in args.lrs]
    return runs, skipped


def built(make: Callable[[], Stack]) -> Stack:
    """The network ``make`` builds; its ValueError names ``--network``."""
    try:
        return make()
    except ValueError as error:
        raise ValueError(f"--network: {error}") from None


def check_batches(stack: Stack, n: int, batch: int) -> None:
    """ValueError naming ``--batch`` where the last batch of an epoch of n samples is too small
    for a batch norm layer."""
    smallest = n % batch or batch
    try:
        check_batch_norm_counts(stack, smallest)
    except ValueError as error:
        raise ValueError(f"--batch: a batch of {smallest} sample{'s' * (smallest != 1)}: {error}") from None


def stack_runs(args: argparse.Namespace, stack: Stack, dataset: str, network: str,
               train: Callable[..., Curve]) -> tuple[list[Run], list[str]]:
    """Every (rule, η) of a network of layers from one start, ``train(rule, params, buffers,
    lr, on_epoch)``, and the mutants that would train exactly as the derived rule."""
    params, buffers = initial_weights(stack, args.seed)
    runs, skipped = [], []
    for rule in (STACK_RULES[r] for r in args.rules.split(",")):
        if untouched_by(rule, stack):
            skipped.append(untouched_by(rule, stack))
            continue
        runs += [Run(dataset, network, rule.name, lr, partial(train, rule, params, buffers, lr))
                 for lr in args.lrs]
    return runs, skipped


def network_runs(args: argparse.Namespace) -> tuple[list[Run], list[str]]:
    """Every (rule, η) of ``--network`` on digits, and the mutants that would train exactly as
    the derived rule; ValueError naming the option for a network that cannot train on digits."""
    stack = built(lambda: digits_stack(args.network))
    data = split("digits", args.seed)
    check_memory(memory_bound(stack, data.X_train.shape[1]), "--network (evaluated on digits' "
                 f"{data.X_train.shape[1]} training images at once)")
    if stack.classes != data.classes:
        raise ValueError(f"--network: the network ends with {stack.classes} outputs; digits has "
                         f"{data.classes} classes (end it with dense:{data.classes})")
    check_batches(stack, data.X_train.shape[1], args.batch)

    def train(rule, params, buffers, lr, on_epoch):
        return train_stack_curve(rule, stack, params, buffers, data, lr, args.epochs, args.batch,
                                 args.seed, "digits", on_epoch)
    return stack_runs(args, stack, "digits", args.network, train)


def sequence_runs(args: argparse.Namespace) -> tuple[list[Run], list[str]]:
    """Every (rule, η) of the network on ``--task``'s generated sequences (the task's network
    unless ``--network``), and the mutants that would train exactly as the derived rule;
    ValueError naming the option for a network that cannot learn the task."""
    stack = built(lambda: sequence_stack(args.network, args.length))
    if misfit(stack, args.task):
        raise ValueError(f"--network: {misfit(stack, args.task)}")
    check_memory(memory_bound(stack, SIZES[0]), f"--network on --length {args.length} (evaluated on "
                 f"{SIZES[0]} training sequences at once)")
    data = generate(args.task, args.length, args.seed)
    check_batches(stack, len(data.x_train), args.batch)

    def train(rule, params, buffers, lr, on_epoch):
        return train_sequence_curve(rule, stack, params, buffers, data, lr, args.epochs, args.batch,
                                    args.seed, on_epoch)
    return stack_runs(args, stack, args.task, f"{args.network} on T={args.length}", train)
