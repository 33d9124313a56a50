"""One forward, from a user's point of view (``bpcheck.user.namespace``, ``known``, ``own_forward``):
a layer, activation or loss written once against ``xp`` needs no torch= or jax=; an activation
or loss ``like=`` a known one neither; a layer's NumPy pair alone is checked against finite
differences of its own forward only, and says so. Each right one agrees, each slip is WRONG."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from bpcheck import UserActivation, UserLayer, UserLoss, check
from bpcheck.core.verdicts import AGREES, INCONCLUSIVE, RAISED, WRONG
from bpcheck.layers.compare import StackRule
from bpcheck.layers.problem import random_problem
from bpcheck.user.own_forward import OWN_ONLY, compare_own_forward
from bpcheck.user.registry import REGISTRY
from manual import stack_network
from manual.stack import Stack
from tests.assertions import run_cli

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES_DIR))
import one_forward as ex  # noqa: E402  (examples/ is a folder of user scripts, not a package)

EXAMPLES = 15
NO_WITNESS = "checked against finite differences of your own forward only; no autodiff witness"


def test_a_layer_written_once_against_xp_agrees_and_its_slip_is_wrong():
    assert ex.rms_norm.torch is not None and ex.rms_norm.jax is not None  # derived, none written
    right = check(ex.rms_norm, examples=EXAMPLES)
    assert right.verdict == AGREES, right.message
    assert "agrees with torch, jax and finite differences" in right.message
    slip = check(ex.rms_norm_slip, examples=EXAMPLES)
    assert slip.verdict == WRONG, slip.message
    assert "your backward is not the gradient of your own forward" in slip.message


def test_an_xp_forward_may_return_its_own_cache():
    def forward(x, params, xp):
        return x * params["a"], {"x": x, "a": params["a"]}

    def backward(dout, cache):
        return dout * cache["a"], {"a": np.sum(dout * cache["x"], axis=0)}

    def slip(dout, cache):
        return dout * cache["a"], {"a": np.sum(dout, axis=0)}  # x left out of da

    shapes = {"a": lambda shape: shape}
    assert check(UserLayer("times_a", forward, backward, parameters=shapes, rank=1),
                 examples=EXAMPLES).verdict == AGREES
    report = check(UserLayer("times_a", forward, slip, parameters=shapes, rank=1), examples=EXAMPLES)
    assert report.verdict == WRONG, report.message
    assert {row.parameter for row in report.rows} == {"times_a1.a"}


def test_an_xp_forward_that_fails_under_torch_names_the_framework():
    def forward(x, params, xp):
        return x.copy() * params["a"]  # ndarray.copy: a torch tensor has clone, not copy

    layer = UserLayer("copies", forward, lambda dout, cache: (dout * cache[1]["a"], {"a": 0 * dout[0]}),
                      parameters={"a": lambda shape: shape}, rank=1)
    report = check(layer, examples=EXAMPLES)
    assert report.verdict == RAISED, report.message
    assert "your forward (xp = torch) raised AttributeError" in report.message


def test_an_xp_forward_that_calls_numpy_is_told_to_call_xp():
    def forward(x, params, xp):
        return np.where(x > 0, x, params["a"] * x)  # np by habit: torch and jax cannot differentiate it

    layer = UserLayer("leaky_a", forward, lambda dout, cache: (dout, {"a": 0 * dout[0]}),
                      parameters={"a": lambda shape: shape}, rank=1, kinks=(0.0,))
    report = check(layer, examples=EXAMPLES)
    assert report.verdict == RAISED, report.message
    assert "your forward (xp = torch) returned ndarray, not a torch array: call xp's" in report.message


def test_a_numpy_forward_alone_is_checked_by_its_own_finite_differences_and_says_so():
    assert ex.swish_gate.torch is None
    right = check(ex.swish_gate, examples=EXAMPLES)
    assert right.verdict == AGREES and NO_WITNESS in right.message, right.message
    assert right.message.startswith("swish_gate: agrees with finite differences of your own forward")
    slip = check(ex.swish_gate_slip, examples=EXAMPLES)
    assert slip.verdict == WRONG, slip.message
    assert NO_WITNESS in slip.message and "not the gradient of your own forward" in slip.message
    assert "WRONG on x" in str(slip).partition("\n")[0]


def test_finite_differences_alone_agree_only_where_they_could_catch_an_error():
    """A step in the forward within the differences' reach: their error estimate breaks its own
    premise there, so the draw is inconclusive, not agrees — though the backward is consistent
    with the forward everywhere else."""
    def forward(x, params):
        return x + 0.5 * np.sign(x), None

    step = UserLayer("step", forward, lambda dout, cache: (dout, {}), rank=1)
    with REGISTRY.scoped(step):
        stack = Stack("step;flatten", (3,), loss="half-sse", reduction="sum", dtype="float64")
        rule = StackRule("step", "a step", pairs=dict(stack_network.PAIRS))
        problem = random_problem(stack, 3, 0)
        assert compare_own_forward(rule, problem).verdict == AGREES  # away from the step
        problem.x[1, 2] = 0.0  # on it
        report = compare_own_forward(rule, problem)
    assert report.verdict == INCONCLUSIVE, report.rows


@pytest.mark.parametrize("right, slip", [(ex.hard_sigmoid, ex.hard_sigmoid_slip),
                                         (ex.my_elu, ex.my_elu_slip)], ids=["value(z, xp)", "like='elu'"])
def test_an_activation_written_once_or_like_a_known_one_agrees_and_its_slip_is_wrong(right, slip):
    report = check(right, examples=EXAMPLES)
    assert report.verdict == AGREES, report.message
    assert check(slip, examples=EXAMPLES).verdict == WRONG


def test_like_takes_the_known_activation_s_kinks_and_parameter():
    elu = UserActivation("half_elu", lambda z: np.where(z > 0, z, 0.5 * np.expm1(np.minimum(z, 0))),
                         lambda z, a: np.where(z > 0, 1.0, a + 0.5), like="elu:0.5")
    assert elu.kinks == (0.0,) and elu.derivative_bound == 1.0
    assert check(elu, examples=EXAMPLES).verdict == AGREES
    wrong_alpha = UserActivation("half_elu", elu.value, elu.derivative, like="elu")  # α = 1
    assert check(wrong_alpha, examples=EXAMPLES).verdict == WRONG


@pytest.mark.parametrize("right, slip", [(ex.huber, ex.huber_slip)])
def test_a_loss_written_once_against_xp_agrees_and_its_slip_is_wrong(right, slip):
    assert check(right, examples=EXAMPLES).verdict == AGREES
    assert check(slip, examples=EXAMPLES).verdict == WRONG


def test_a_loss_on_labels_written_once_agrees():
    assert check(ex.nll, examples=EXAMPLES).verdict == AGREES


def test_an_xp_loss_in_the_user_s_layout_returning_the_batch_mean():
    def mse(p, y, xp):  # samples x outputs, one scalar for the batch
        return xp.mean((p - y) ** 2)

    right = UserLoss("mse_rows", mse, lambda p, y: 2 * (p - y) / p.size, layout="samples_by_outputs",
                     batch="mean")
    assert check(right, examples=EXAMPLES).verdict == AGREES
    summed = UserLoss("mse_rows", mse, lambda p, y: 2 * (p - y), layout="samples_by_outputs", batch="mean")
    assert check(summed, examples=EXAMPLES).verdict == WRONG  # the batch's 1/N lost


def test_a_loss_like_a_known_one_in_the_user_s_layout_and_batch_mean():
    mse = UserLoss("my_mse", lambda p, y: np.mean((p - y) ** 2), lambda p, y: 2 * (p - y) / p.size,
                   like="mse", batch="mean", layout="samples_by_outputs")
    assert check(mse, examples=EXAMPLES).verdict == AGREES
    halved = UserLoss("my_mse", mse.per_sample, lambda p, y: (p - y) / p.size, like="mse", batch="mean",
                      layout="samples_by_outputs")
    assert check(halved, examples=EXAMPLES).verdict == WRONG


@pytest.mark.parametrize("declare, error, says", [
    (lambda: UserLayer("a", lambda x, p: (x, None), lambda d, c: (d, {}), torch=lambda x, p: x),
     TypeError, "torch= was given without jax="),
    (lambda: UserActivation("a", np.tanh, lambda z, a: 1 - a * a), TypeError,
     "write value(z, xp) once against an array namespace, or say like='elu'"),
    (lambda: UserActivation("a", np.tanh, lambda z, a: 1 - a * a, like="nonesuch"), ValueError,
     "like='nonesuch': unknown activation"),
    (lambda: UserActivation("a", np.tanh, lambda z, a: 1 - a * a, like="gelu:2"), ValueError,
     "like='gelu:2': gelu takes no parameter"),
    (lambda: UserActivation("a", np.tanh, lambda z, a: 1 - a * a, like="tanh", torch=np.tanh, jax=np.tanh),
     TypeError, "like= and torch=/jax= were both given"),
    (lambda: UserLoss("a", lambda p, y: p, lambda p, y: p), TypeError, "write per_sample(p, y, xp) once"),
    (lambda: UserLoss("a", lambda p, y: p, lambda p, y: p, like="softmax-ce-labels", targets="probabilities"),
     ValueError, "targets='probabilities': the loss like='softmax-ce-labels' takes labels"),
])
def test_a_bad_declaration_names_the_argument(declare, error, says):
    with pytest.raises(error) as raised:
        declare()
    assert says in str(raised.value)


def test_a_bad_declaration_is_a_usage_error_on_the_command_line(tmp_path):
    module = tmp_path / "bad_like.py"
    module.write_text("import numpy as np\nfrom bpcheck import UserActivation\n"
                      "act = UserActivation('act', np.tanh, lambda z, a: 1 - a * a, like='nonesuch')\n")
    assert "like='nonesuch': unknown activation" in run_cli(["verify", f"{module}:act"], 2)


def test_the_report_of_a_numpy_only_layer_on_the_command_line(tmp_path):
    out = run_cli(["verify", str(EXAMPLES_DIR / "one_forward.py:swish_gate_slip"), "--examples", "10"], 1)
    assert "swish_gate: WRONG on x" in out and NO_WITNESS in out
    assert OWN_ONLY.split(";")[0] in out


def test_a_recurrent_layer_written_once_agrees_and_its_truncated_bptt_is_wrong():
    assert check(ex.rnn, examples=10).verdict == AGREES
    slip = check(ex.rnn_slip, examples=10)
    assert slip.verdict == WRONG and "my_rnn1.W" in {row.parameter for row in slip.rows}, slip.message
