"""A user rule's, activation's, loss's or layer's callables, guarded (``guard``): each call stopped after
the time limit (``bpcheck.core.user_code.limited``), and what it raises, or a NumPy result of the
wrong shape, dtype or with a NaN, a ``UserCodeError`` naming the part."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Protocol, TypeVar

import numpy as np

from bpcheck.core.user_code import BadResult, UserCodeError, limited, nan_problem, result_problem

#: The user's callables of each kind of rule, by field name (named when one raises).
PARTS = {"activation": ("value", "derivative", "torch", "jax"),
         "loss": ("per_sample", "gradient", "torch", "jax")}
#: A ``bpcheck.user.extend.UserActivation`` or ``UserLoss``: its ``kind`` names its PARTS.
ActivationOrLoss = TypeVar("ActivationOrLoss")


class LossLayout(Protocol):
    """What a loss's result checks read of a ``bpcheck.user.extend.UserLoss``."""

    batch: str | None
    layout: str


def guard(rule: str, part: str, function: Callable,
          expect: Callable[[tuple, object], str | None] | None = None,
          given: Callable[[], str] | None = None) -> Callable:
    """``function``, stopped after the time limit (``bpcheck.core.user_code.limited``; ``given()``
    says what it was given, else the arrays' shapes), whose exceptions come out as a
    ``UserCodeError`` naming ``part``, as does a result that ``expect(args, result)`` finds wrong
    (a ``BadResult`` saying what it returned)."""

    @functools.wraps(function)
    def call(*args, **kwargs):
        try:
            result = limited(function, args, kwargs, given)
        except UserCodeError:
            raise
        except (Exception, SystemExit) as error:  # sys.exit() in your code is a failure too
            raise UserCodeError(rule, part, error) from error
        wrong = None if expect is None else expect(args, result)
        if wrong is not None:
            raise UserCodeError(rule, part, BadResult(wrong))
        return result

    return call


def _elementwise(args: tuple, result) -> str | None:
    """An activation's value(z) or derivative(z, a): an array like z (shape, dtype), NaN-free."""
    z = args[0] if args else None
    if not (isinstance(z, np.ndarray) and np.issubdtype(z.dtype, np.floating)):
        return None  # not a call bpcheck makes
    return result_problem(result, z.shape, z.dtype, "z's") or nan_problem(result, args, z)


def _loss_result(rule: LossLayout, part: str) -> Callable[[tuple, object], str | None]:
    """A loss's gradient(p, y): an array like p; its per_sample(p, y): one value per sample (the
    outputs' axis summed), or one for the batch (``batch``), real; neither with a NaN."""

    def expect(args: tuple, result) -> str | None:
        p = args[0] if args else None
        if not (isinstance(p, np.ndarray) and np.issubdtype(p.dtype, np.floating) and p.ndim >= 2):
            return None
        if part == "gradient":
            wrong = result_problem(result, p.shape, p.dtype, "p's")
        else:
            shape = (p.shape[:-2] if rule.batch is not None else p.shape[:-1]
                     if rule.layout == "samples_by_outputs" else p.shape[:-2] + p.shape[-1:])
            whose = "the batch's (one scalar)" if rule.batch is not None else "the samples'"
            wrong = result_problem(result, shape, None, whose)
        return wrong or nan_problem(result, args)

    return expect


def _framework_loss_result(rule: LossLayout, part: str) -> Callable[[tuple, object], str | None]:
    """A loss's torch(p, y) (p samples × outputs) or jax(p, y) (p in ``layout``): one value per
    sample, or one for the batch (``batch``) — a tensor or array of that shape."""

    def expect(args: tuple, result) -> str | None:
        p = args[0] if args else None
        given = getattr(p, "shape", None)
        if given is None or len(given) < 2:
            return None  # not a call bpcheck makes
        given = tuple(given)
        samples_last = part == "jax" and rule.layout == "outputs_by_samples"
        shape = (() if rule.batch is not None else given[:-2] + given[-1:] if samples_last
                 else given[:-1])
        got = getattr(result, "shape", None)
        if got is None:
            return f"it returned {type(result).__name__} {result!r:.60}; expected an array of shape {shape}"
        if tuple(got) == shape or (rule.batch is not None and int(np.prod(tuple(got))) == 1):
            return None
        layout = "outputs × samples" if samples_last else "samples × outputs"
        due = "one scalar for the batch" if rule.batch is not None else "one value per sample"
        return (f"it returned shape {tuple(got)}; expected {shape}, {due} (p of shape {given}, "
                f"{layout})")

    return expect


def guarded(rule: ActivationOrLoss) -> ActivationOrLoss:
    """The same rule with every callable guarded (``guard``), the NumPy ones' results checked."""
    parts = PARTS[rule.kind]
    if rule.kind == "activation":
        expect = {"value": _elementwise, "derivative": _elementwise}
    else:
        expect = {part: _loss_result(rule, part) for part in ("per_sample", "gradient")}
        expect |= {part: _framework_loss_result(rule, part) for part in ("torch", "jax")}
    return dataclasses.replace(rule, **{part: guard(rule.name, part, getattr(rule, part), expect.get(part))
                                        for part in parts})
