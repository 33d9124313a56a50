"""Users' own rules: registered everywhere, checked by ``bpcheck verify``, wrong ones caught."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bpcheck.core.tolerances import SAFETY, unit_roundoff
from bpcheck.mlp.compare import ask_witnesses, compare_rule
from bpcheck.mlp.problem import Problem
from bpcheck.mlp.strategies import KINK_MARGIN_ABSOLUTE, away_from_kinks
from bpcheck.user.extend import UserActivation, UserLoss, load_user_rule, verify
from bpcheck.user.registry import REGISTRY
from manual import spec as vocabulary
from manual.rules import RULES
from manual.spec import Spec, param_shapes
from reference import WITNESSES
from tests.assertions import run_cli

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "user_rules.py"


def test_a_correct_user_activation_passes():
    verdict = verify(load_user_rule(f"{EXAMPLES}:swish"), max_examples=25)
    assert verdict.failure is None and verdict.examples > 0


def test_a_user_rule_joins_every_registry_only_while_scoped():
    swish = load_user_rule(f"{EXAMPLES}:swish")
    with REGISTRY.scoped(swish):
        assert "swish" in vocabulary.ACTIVATIONS
        assert all("swish" in witness.activations for witness in WITNESSES.values())
    assert "swish" not in vocabulary.ACTIVATIONS
    assert not any("swish" in witness.activations for witness in WITNESSES.values())


def test_a_scoped_rule_puts_back_what_it_replaced_even_when_the_block_raises():
    tables = REGISTRY.tables["activation"]
    with REGISTRY.scoped(UserActivation("soft", **SOFT_RELU)):  # a built-in's name is refused
        before = {role: table["soft"] for role, table in tables.items()}
        other = UserActivation("soft", **SOFT_RELU, derivative_bound=3.0)
        with pytest.raises(RuntimeError, match="inside"), REGISTRY.scoped(other):
            assert all(table["soft"] is not before[role] for role, table in tables.items())
            raise RuntimeError("inside the block")
        assert all(table["soft"] is before[role] for role, table in tables.items())


def test_a_subtly_wrong_user_activation_is_caught_with_a_small_network():
    verdict = verify(load_user_rule(f"{EXAMPLES}:swish_wrong"), max_examples=100)
    assert verdict.failure is not None and not verdict.report.agrees
    assert "swish_wrong" in verdict.failure.spec.activations
    assert all(width == 1 for width in verdict.failure.spec.sizes)  # shrunk to the smallest widths


def log_cosh(p, y):
    """ℓ_n = Σ_c log cosh(p_c − y_c)."""
    d = p - y
    return np.sum(np.logaddexp(d, -d) - np.log(2.0), axis=-2)


LOG_COSH = UserLoss(
    "log-cosh", log_cosh, lambda p, y: np.tanh(p - y),
    torch=lambda p, y: (torch.logaddexp(p - y, y - p) - np.log(2.0)).sum(dim=1),
    jax=lambda p, y: (jnp.logaddexp(p - y, y - p) - np.log(2.0)).sum(axis=0),
)
LOG_COSH_WRONG = UserLoss("log-cosh-wrong", log_cosh, lambda p, y: np.tanh(2 * (p - y)),
                          torch=LOG_COSH.torch, jax=LOG_COSH.jax)


def log_cosh_rows(p, y):
    """ℓ_n = Σ_c log cosh(p_nc − y_nc), written for samples × outputs arrays."""
    d = p - y
    return np.sum(np.logaddexp(d, -d) - np.log(2.0), axis=-1)


LOG_COSH_ROWS = UserLoss(
    "log-cosh-rows", log_cosh_rows, lambda p, y: np.tanh(p - y), torch=LOG_COSH.torch,
    jax=lambda p, y: (jnp.logaddexp(p - y, y - p) - np.log(2.0)).sum(axis=1),
    layout="samples_by_outputs")
#: axis 0 where a samples × outputs loss sums over axis 1: one value per output, not per sample
#: (refused for its shape where N ≠ C, wrong where N = C)
LOG_COSH_ROWS_WRONG = UserLoss("log-cosh-rows-wrong", lambda p, y: log_cosh(p, y),
                               LOG_COSH_ROWS.gradient, torch=LOG_COSH.torch, jax=LOG_COSH_ROWS.jax,
                               layout="samples_by_outputs")


@pytest.mark.parametrize(("loss", "caught"), [(LOG_COSH, False), (LOG_COSH_WRONG, True),
                                              (LOG_COSH_ROWS, False), (LOG_COSH_ROWS_WRONG, True)])
def test_user_losses_are_verified_too(loss, caught):
    verdict = verify(loss, max_examples=30)
    assert (not verdict.passed) == caught
    assert verdict.failure is None or verdict.failure.spec.loss == loss.name
    if verdict.raised is not None:  # what it returned cannot be used: its shape
        assert verdict.part == "per_sample"
        assert "expected an ndarray of the samples' shape" in str(verdict.raised)


def textbook_bce(p, y):
    """ℓ_n = −Σ_c [y log p + (1 − y) log(1 − p)], unclipped: p must be a probability."""
    return -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p), axis=-2)


def test_a_loss_on_probabilities_is_declared_and_drawn_after_sigmoid_or_softmax():
    """Textbook BCE, unclipped and right, was RAISED (a NaN gradient at p = 0 after a tanh
    output). Declared ``on_probabilities``, every network ends in sigmoid or softmax, and it
    agrees; its gradient with a factor 2 slip is still caught."""
    parts = {"torch": lambda p, y: F.binary_cross_entropy(p, y, reduction="none").sum(dim=1),
             "jax": lambda p, y: -jnp.sum(y * jnp.log(p) + (1 - y) * jnp.log1p(-p), axis=0),
             "targets": "probabilities"}
    gradient = lambda p, y: (p - y) / (p * (1 - p))  # noqa: E731
    undeclared = UserLoss("textbook_bce", textbook_bce, gradient, **parts)
    assert verify(undeclared, max_examples=30).raised is not None
    declared = dataclasses.replace(undeclared, on_probabilities=True)
    outputs = []
    verdict = verify(declared, max_examples=10, observe=lambda p: outputs.append(p.spec.activations[-1]))
    assert verdict.passed and verdict.examples == 10, verdict
    assert set(outputs) <= {"sigmoid", "softmax"} and len(outputs) >= 10
    slip = dataclasses.replace(declared, name="textbook_bce_slip", gradient=lambda p, y: 2 * gradient(p, y))
    assert not verify(slip, max_examples=10).passed
    with pytest.raises(TypeError, match="on_probabilities='yes' must be True or False"):
        dataclasses.replace(declared, on_probabilities="yes")


def test_verify_command_exit_codes():
    assert "swish: 5 random networks agree" in run_cli(["verify", f"{EXAMPLES}:swish", "--examples", "5"], 0)
    out = run_cli(["verify", f"{EXAMPLES}:swish_wrong", "--examples", "30"], 1)
    assert "swish_wrong: WRONG" in out and "DIFFERS" in out
    assert "your derivative is not the derivative of your value" in out
    assert "no_such_module" in run_cli(["verify", "no_such_module:thing"], 2)
    out = run_cli(["verify", f"{EXAMPLES}:expit"], 2)
    assert "expected a UserRule, UserActivation, UserLoss or UserLayer" in out


def test_registering_something_else_is_refused():
    refused = pytest.raises(TypeError, match="not a UserActivation, UserLoss or UserLayer")
    with refused, REGISTRY.scoped(F.relu):
        pass
    with pytest.raises(TypeError, match="not a UserActivation, UserLoss or UserLayer"):
        REGISTRY.register(F.relu)


def soft_relu(z):
    """f(z) = max(z, 0) + 0.1·min(z, 0): a kink at 0, declared."""
    return np.maximum(z, 0) + 0.1 * np.minimum(z, 0)


SOFT_RELU = dict(value=soft_relu, derivative=lambda z, a: np.where(z > 0, 1.0, 0.1).astype(z.dtype),
                 torch=lambda z: F.leaky_relu(z, 0.1), jax=lambda z: jnp.where(z > 0, z, 0.1 * z))


def test_a_user_activation_declares_its_kinks_and_draws_keep_away():
    kinked = UserActivation("soft_relu", **SOFT_RELU, kinks=(0.0,))
    spec_args = ((1, 1), ("soft_relu",), "half-sse", "sum", "vector")
    with REGISTRY.scoped(kinked):
        assert vocabulary.ACTIVATIONS["soft_relu"].kinks == (0.0,)
        near = Problem(Spec(*spec_args), {"W1": np.ones((1, 1)), "b1": np.zeros(1)},
                       np.full((1, 1), KINK_MARGIN_ABSOLUTE / 2), np.zeros((1, 1)), 0.1)
        assert not away_from_kinks(near)
        assert away_from_kinks(Problem(near.spec, near.params, np.ones((1, 1)), near.Y, 0.1))
    with REGISTRY.scoped(UserActivation("soft_relu", **SOFT_RELU)):  # undeclared: nothing to avoid
        assert away_from_kinks(near)


@pytest.mark.parametrize("kinks", [0.0, ("zero",), (float("nan"),)])
def test_kinks_must_be_finite_numbers(kinks):
    with pytest.raises(ValueError, match=r"kinks=.* must be a tuple of finite numbers"):
        UserActivation("soft_relu", **SOFT_RELU, kinks=kinks)


def test_a_user_loss_is_computed_unpadded_by_jax():
    """A mean over outputs that ignores the jax witness's output mask would divide by the
    padded width (16), not by C = 3, if the witness padded it as it pads its own ``mse``."""
    mean_square = UserLoss("my_mse", lambda p, y: np.mean((p - y) ** 2, axis=-2),
                           lambda p, y: 2 * (p - y) / p.shape[-2],
                           torch=lambda p, y: ((p - y) ** 2).mean(dim=1),
                           jax=lambda p, y: ((p - y) ** 2).mean(axis=0))
    rng = np.random.default_rng(0)
    with REGISTRY.scoped(mean_square):
        spec = Spec((2, 3), ("identity",), "my_mse", bias="vector")
        problem = Problem(spec, {"W1": rng.normal(size=(3, 2)), "b1": rng.normal(size=3)},
                          rng.normal(size=(2, 4)), rng.normal(size=(3, 4)), 0.1)
        torch_grads, jax_grads = (WITNESSES[name].gradients(*problem.arrays()) for name in ("torch", "jax"))
    for name, value in torch_grads.items():
        np.testing.assert_allclose(jax_grads[name], value, rtol=SAFETY * unit_roundoff(np.float64) * 16)


def _log_softmax(p, axis):
    shifted = p - p.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


#: a loss on logits: the softmax folded into the loss, soft targets
SOFTMAX_CE_LOGITS = UserLoss(
    "my-softmax-ce", lambda p, y: -np.sum(y * _log_softmax(p, -2), axis=-2),
    lambda p, y: np.exp(_log_softmax(p, -2)) * y.sum(axis=-2, keepdims=True) - y,
    torch=lambda p, y: -(y * torch.log_softmax(p, dim=1)).sum(dim=1),
    jax=lambda p, y: -(y * jax.nn.log_softmax(p, axis=0)).sum(axis=0), targets="probabilities")


def differs_on_one_network(loss: UserLoss, Y: np.ndarray) -> set[str]:
    """The witnesses the derived rule with ``loss`` differs from on one fixed network (a search
    would shrink through shapes an unpadded user loss recompiles jax for)."""
    with REGISTRY.scoped(loss):
        spec = Spec((3, 4, 3), ("tanh", "identity"), loss.name, bias="vector")
        rng = np.random.default_rng(0)
        params = {name: rng.uniform(-0.5, 0.5, shape) for name, shape in param_shapes(spec).items()}
        problem = Problem(spec, params, rng.normal(size=(3, Y.shape[-1])), Y, 0.1)
        report = compare_rule(RULES["derived"], problem, ask_witnesses(problem))
    return {row.witness for row in report.rows if row.differs}


SOFT_TARGETS = np.random.default_rng(1).uniform(size=(3, 5))  # columns summing to ≠ 1


def test_a_loss_on_logits_is_verified_and_its_soft_target_slip_caught():
    assert verify(SOFTMAX_CE_LOGITS, max_examples=20).passed
    slip = dataclasses.replace(SOFTMAX_CE_LOGITS, name="my-softmax-ce-slip",
                               gradient=lambda p, y: np.exp(_log_softmax(p, -2)) - y)  # Σy = 1 assumed
    assert differs_on_one_network(slip, SOFT_TARGETS) == {"torch", "jax", "numeric"}


def _ce_labels(p, labels):
    """ℓ_n = −log softmax(p)[y_n, n], p outputs × samples (leading copies allowed)."""
    return -_log_softmax(p, -2)[..., labels, np.arange(labels.shape[0])]


def _ce_labels_gradient(p, labels):
    grad = np.exp(_log_softmax(p, -2))
    grad[labels, np.arange(labels.shape[0])] -= 1.0
    return grad


CE_LABELS = UserLoss("my-ce-labels", _ce_labels, _ce_labels_gradient,
                     torch=lambda p, y: F.cross_entropy(p, y, reduction="none"),
                     jax=lambda p, y: -jax.nn.log_softmax(p, axis=0)[y, jnp.arange(y.shape[0])],
                     targets="labels")


def test_a_user_loss_on_class_labels_is_verified_and_a_wrong_one_caught():
    assert verify(CE_LABELS, max_examples=20).passed
    off_by_one = dataclasses.replace(CE_LABELS, name="my-ce-labels-off", gradient=lambda p, y: (
        _ce_labels_gradient(p, (y + 1) % p.shape[0])))
    assert differs_on_one_network(off_by_one, np.array([0, 1, 2, 1, 0])) == {"torch", "jax", "numeric"}


def _batch_log_cosh(reduce):
    """log-cosh written as one scalar for the batch: reduce(Σ_c log cosh(p − y)) over samples."""
    def value(p, y):
        return reduce(log_cosh(p, y))

    def torch_value(p, y):
        return (torch.logaddexp(p - y, y - p) - np.log(2.0)).sum(dim=1).sum() / (
            p.shape[0] if reduce is np.mean else 1)

    def jax_value(p, y):
        return (jnp.logaddexp(p - y, y - p) - np.log(2.0)).sum(axis=0).sum() / (
            p.shape[1] if reduce is np.mean else 1)

    return value, torch_value, jax_value


@pytest.mark.parametrize("batch", ["sum", "mean"])
def test_a_batch_scalar_user_loss_is_verified_and_its_lost_mean_caught(batch):
    reduce = np.sum if batch == "sum" else np.mean
    value, torch_value, jax_value = _batch_log_cosh(reduce)
    scale = (lambda p: 1.0) if batch == "sum" else (lambda p: 1.0 / p.shape[1])
    loss = UserLoss(f"log-cosh-{batch}", value, lambda p, y: np.tanh(p - y) * scale(p),
                    torch=torch_value, jax=jax_value, batch=batch)
    assert verify(loss, max_examples=15).passed
    if batch == "mean":  # the gradient of the sum, where the value is the mean: 1/N lost
        lost = dataclasses.replace(loss, name="log-cosh-mean-lost", gradient=lambda p, y: np.tanh(p - y))
        assert differs_on_one_network(lost, SOFT_TARGETS) == {"torch", "jax", "numeric"}
