"""Hostile input to the Python API and from user code (issue 31, round 3): every refusal names
the argument or the part, before any work; what a user's callable returns is checked (shape,
dtype, NaN, complex); a call that never returns is stopped at the time limit."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import jax
import numpy as np
import pytest
import torch
from scipy.special import expit

from bpcheck import Conventions, UserRule, check
from bpcheck.core.search import UserCodeError
from bpcheck.core.user_code import TimeLimitExceeded, check_time_limit, limited, time_limit
from bpcheck.core.verdicts import RAISED
from bpcheck.layers.compare import DERIVED, ask_stack_witnesses, compare_stack, compare_stack_rule
from bpcheck.layers.problem import StackProblem, random_problem
from bpcheck.mlp.compare import ask_witnesses, compare_all, compare_rule
from bpcheck.mlp.problem import Problem
from bpcheck.mlp.search import hunt
from bpcheck.mlp.strategies import problems, specs
from bpcheck.user.extend import UserActivation, UserLoss
from bpcheck.user.guards import guarded
from bpcheck.user.layer import UserLayer
from manual.initialisers import truncated_normal
from manual.rules import RULES
from manual.spec import Spec
from manual.stack import Stack

ROOT = Path(__file__).resolve().parents[1]


def _never(*args):
    raise AssertionError("a refused rule must not be run")


# --- 1, 6, 7: refused at construction or at check()'s entry -----------------------------------
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sizes": (4, 0, 3)}, "sizes[1]=0: every layer needs width >= 1"),
    ({"sizes": (4,)}, "sizes=(4,) needs at least (inputs, outputs)"),
    ({"sizes": (4, 5, 6, 3), "activations": ("relu",) * 4}, "activations=('relu', 'relu', 'relu', "
                                                             "'relu') name 4 layers; the network has 3"),
    ({"sizes": 5}, "sizes=5 must be a tuple of layer widths"),
    ({"hidden_layers": 1.5}, "hidden_layers=1.5: expected an int or a (low, high) range"),
    ({"hidden_layers": True}, "hidden_layers=True"),
    ({"activations": ("softmax", "identity")}, "softmax is allowed only at the output"),
    # before: hidden_layers was ignored where sizes or one activation per layer fix the depth
    ({"hidden_layers": 3, "activations": ("relu", "relu", "identity")},
     "hidden_layers=3 and activations=('relu', 'relu', 'identity') disagree: activations=('relu', "
     "'relu', 'identity') makes 2 hidden layers"),
    ({"hidden_layers": (2, 4), "sizes": (4, 5, 3)},
     "hidden_layers=(2, 4) and sizes=(4, 5, 3) disagree: sizes=(4, 5, 3) makes 1 hidden layer"),
])
def test_a_network_that_cannot_be_drawn_is_refused_when_declared(kwargs, message):
    with pytest.raises((TypeError, ValueError)) as error:
        UserRule("bad", _never, **kwargs)
    assert message in str(error.value)


def test_hidden_layers_agreeing_with_the_sizes_are_honoured_and_a_pinned_network_overrides_them():
    assert UserRule("both", _never, hidden_layers=(1, 3), sizes=(4, 5, 6, 3)).depths() == (3, 3)
    assert UserRule("both", _never, hidden_layers=2, activations=("relu",) * 3).depths() == (3, 3)
    ranged = UserRule("ranged", _never, hidden_layers=(1, 3))
    assert ranged.depths() == (2, 4) and ranged.pinned((4, 5, 5, 5, 5, 3)).depths() == (5, 5)


def test_a_result_with_a_key_the_conventions_do_not_name_is_refused_naming_it():
    """Before: an extra key (a parameter misnamed, say) was ignored."""
    spec = Spec((2, 3, 1), ("sigmoid", "sigmoid"), bias="vector")
    conventions = Conventions(params="dict")
    user = conventions.params_to_user(spec, truncated_normal(spec, np.random.default_rng(0)))
    with pytest.raises(ValueError) as error:
        conventions.params_from_user(spec, user | {"W3": user["W2"]}, "returned")
    assert str(error.value) == ("returned has keys ['W1', 'W2', 'b1', 'b2', 'W3']; expected ['W1', "
                                "'W2', 'b1', 'b2'] (unknown ['W3'])")
    assert conventions.params_from_user(spec, user, "returned").keys() == {"W1", "b1", "W2", "b2"}


RULE = UserRule("fine", _never)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"dtype": "float16"}, "dtype='float16' is unknown"),
    ({"layers": (2, 0, 3)}, "layers=(2, 0, 3): sizes[1]=0: every layer needs width >= 1"),
    ({"layers": 3}, "layers=3 must be a tuple"),
    ({"examples": 0}, "examples=0 must be an int >= 1"),
    ({"examples": -1}, "examples=-1 must be an int >= 1"),
    ({"examples": "10"}, "examples='10' must be an int >= 1"),
    ({"seed": -1}, "seed=-1 must be an int >= 0"),
    ({"time_limit": 0}, "time_limit=0 must be a number of seconds >= 0.01"),
    ({"time_limit": float("nan")}, "time_limit=nan must be a number of seconds >= 0.01, or None (or inf)"),
    ({"examples": 10**12}, "examples=1000000000000 must be at most 100000"),
    ({"layers": (10**20, 3)}, "layers=(100000000000000000000, 3) with up to 8 samples: needs about"),
])
def test_check_refuses_bad_arguments_before_any_work(kwargs, message):
    with pytest.raises((TypeError, ValueError)) as error:
        check(RULE, **kwargs)
    assert message in str(error.value)


@pytest.mark.parametrize("seconds", [None, float("inf"), 1e300, 10**10])
def test_an_infinite_time_limit_or_one_the_timer_cannot_hold_is_no_limit(seconds):
    """Before: inf was refused as if it were not > 0, and 1e10 reached setitimer's OverflowError."""
    assert check_time_limit(seconds) is None
    assert check_time_limit(2) == 2.0


def test_a_search_of_no_examples_is_refused_naming_examples():
    with pytest.raises(ValueError, match=r"examples=0 must be an int >= 1"):
        hunt(RULES["derived"], problems(specs()), 0)


SOFT = {"value": np.tanh, "derivative": lambda z, a: 1 - a * a, "torch": torch.tanh, "jax": jax.numpy.tanh}


@pytest.mark.parametrize("make", [lambda: UserActivation("relu", **SOFT),
                                  lambda: UserLoss("mse", **{"per_sample": _never, "gradient": _never,
                                                             "torch": _never, "jax": _never})])
def test_a_user_part_under_a_built_in_name_is_refused(make):
    with pytest.raises(ValueError, match=r"name='(relu|mse)' is a built-in (activation|loss); choose"):
        make()


# --- 2: array-likes ----------------------------------------------------------------------------
def test_a_problem_of_lists_holds_arrays_and_leaves_the_callers_lists_alone():
    rng = np.random.default_rng(0)
    spec = Spec((3, 4, 2), ("tanh", "identity"))
    params, X, Y = truncated_normal(spec, rng), rng.normal(size=(3, 5)), rng.normal(size=(2, 5))
    listed_x, listed_params = X.tolist(), {name: value.tolist() for name, value in params.items()}
    problem = Problem(spec, listed_params, listed_x, Y.tolist(), 0.1)
    assert isinstance(problem.X, np.ndarray) and np.array_equal(problem.X, X)
    assert all(isinstance(value, np.ndarray) for value in problem.params.values())
    assert listed_x == X.tolist() and isinstance(listed_params["W1"], list)  # untouched
    assert compare_rule(RULES["derived"], problem, ask_witnesses(problem, False)).agrees
    arrays = Problem(spec, params, X, Y, 0.1)  # arrays are kept as they are: no copy
    assert arrays.X is X and arrays.params is params


def test_a_stack_problem_of_lists_holds_arrays():
    given = random_problem(Stack("dense:3;tanh;dense:2", (4,)), 3)
    problem = StackProblem(given.stack, given.params, given.x.tolist(), given.y.tolist(), lr=given.lr)
    assert isinstance(problem.x, np.ndarray) and problem.n_samples == 3
    assert np.array_equal(problem.y, given.y)


# --- 3, 7: the truth must be the problem's; the rule and problem of the right type --------------
def test_a_truth_for_another_problem_is_refused():
    rng = np.random.default_rng(1)
    spec = Spec((2, 3, 2), ("tanh", "identity"))
    one, two = (Problem(spec, truncated_normal(spec, rng), rng.normal(size=(2, 4)),
                        rng.normal(size=(2, 4)), 0.1) for _ in range(2))
    with pytest.raises(ValueError, match="truth is the witnesses' answer for another problem"):
        compare_rule(RULES["derived"], one, ask_witnesses(two, False))
    same = Problem(spec, {k: v.copy() for k, v in one.params.items()}, one.X.copy(), one.Y.copy(), 0.1)
    assert compare_rule(RULES["derived"], one, ask_witnesses(same, False)).agrees  # equal values


def test_a_stack_truth_for_another_problem_is_refused():
    stack = Stack("dense:3;tanh;dense:2", (4,))
    one, two = random_problem(stack, 3, seed=0), random_problem(stack, 3, seed=1)
    with pytest.raises(ValueError, match="truth is the witnesses' answer for another problem"):
        compare_stack_rule(DERIVED, one, ask_stack_witnesses(two, False))


@pytest.mark.parametrize(("call", "message"), [
    (lambda: compare_stack({}), "problem={} is a dict; expected a StackProblem"),
    (lambda: compare_stack(random_problem(Stack("dense:2", (3,)), 2), ["derived"]),
     "rules=['derived'] must be a list of StackRule"),
    # before: AttributeError, or NumPy's words naming nothing of the call
    (lambda: Problem(None, {}, np.ones((2, 3)), np.ones((2, 3)), 0.1),
     "spec=None is a NoneType; expected a Spec"),
    (lambda: Spec(None, ("sigmoid",)), "sizes=None must be a tuple of layer widths"),
    (lambda: ask_witnesses({}), "problem={} is a dict; expected a Problem (for a StackProblem"),
    (lambda: ask_stack_witnesses(None), "problem=None is a NoneType; expected a StackProblem"),
    (lambda: compare_all(None, ["derivd"]), "rule_names=['derivd'] must be a list of the names in RULES"),
    (lambda: random_problem("dense:2", 2), "stack='dense:2' is a str; expected a Stack"),
    (lambda: random_problem(Stack("dense:2", (3,)), -1), "n=-1 must be an int >= 1"),
    (lambda: random_problem(Stack("dense:2", (3,)), 2, seed=-1), "seed=-1 must be an int >= 0"),
    (lambda: random_problem(Stack("dense:2", (3,)), 2, scale=float("nan")), "scale=nan must be a finite"),
])
def test_a_wrong_argument_is_named(call, message):
    with pytest.raises((TypeError, ValueError)) as error:
        call()
    assert message in str(error.value)


def test_compare_rule_names_a_rule_given_by_name():
    spec = Spec((2, 2), ("identity",))
    problem = Problem(spec, truncated_normal(spec, np.random.default_rng(0)), np.ones((2, 3)),
                      np.ones((2, 3)), 0.1)
    with pytest.raises(TypeError, match=r"rule='derived' is a str; expected a UpdateRule \(e.g. RULES"):
        compare_rule("derived", problem, ask_witnesses(problem, False))


# --- 4: what a user's callables return ---------------------------------------------------------
def _swish(z):
    return z * expit(z)


def _swish_prime(z, a):
    s = expit(z)
    return s + a * (1.0 - s)


def _swish_part(**changes) -> UserActivation:
    parts = {"value": _swish, "derivative": _swish_prime, "torch": lambda z: z * torch.sigmoid(z),
             "jax": lambda z: z * jax.nn.sigmoid(z)} | changes
    return UserActivation("swish_hostile", **parts)


@pytest.mark.parametrize(("changes", "part", "message"), [
    ({"derivative": lambda z, a: 0.5}, "derivative",
     "it returned float 0.5; expected an ndarray of z's shape"),
    ({"derivative": lambda z, a: np.full_like(z, np.nan)}, "derivative", "it returned NaN at"),
    ({"derivative": lambda z, a: _swish_prime(z, a).astype(np.float32)}, "derivative",
     "it returned an array of dtype float32; expected an ndarray of z's shape"),
    ({"derivative": lambda z, a: _swish_prime(z, a) + 0j}, "derivative", "it returned a complex array"),
    ({"value": lambda z: _swish(z)[..., :1]}, "value", "expected an ndarray of z's shape"),
])
def test_an_activation_returning_what_cannot_be_used_is_named(changes, part, message):
    report = check(_swish_part(**changes), 5)
    assert report.verdict == RAISED and report.part == part, str(report)
    assert message in str(report.error) and "X, Y or the weights" not in report.message


def test_a_loss_gradient_of_the_wrong_shape_names_the_shape_expected():
    loss = UserLoss("half_sse_flat", lambda p, y: 0.5 * np.sum((p - y) ** 2, axis=-2),
                    lambda p, y: np.sum(p - y, axis=-2),  # (N,), not (C, N)
                    torch=lambda p, y: 0.5 * ((p - y) ** 2).sum(dim=1),
                    jax=lambda p, y: 0.5 * ((p - y) ** 2).sum(axis=0))
    report = check(loss, 5)
    assert report.verdict == RAISED and report.part == "gradient", str(report)
    assert "expected an ndarray of p's shape" in str(report.error)
    assert "your gradient returned a wrong result" in report.message


def _half_sse_loss(**changes) -> UserLoss:
    parts = {"per_sample": lambda p, y: 0.5 * np.sum((p - y) ** 2, axis=-2), "gradient": lambda p, y: p - y,
             "torch": lambda p, y: 0.5 * ((p - y) ** 2).sum(dim=1),
             "jax": lambda p, y: 0.5 * ((p - y) ** 2).sum(axis=0)} | changes
    return UserLoss("half_sse_hostile", **parts)


@pytest.mark.parametrize(("part", "forward", "p", "message"), [
    ("torch", lambda p, y: ((p - y) ** 2).sum(), torch.ones(3, 2),
     "it returned shape (); expected (3,), one value per sample (p of shape (3, 2), samples × outputs)"),
    ("torch", lambda p, y: (p - y) ** 2, torch.ones(3, 2), "it returned shape (3, 2); expected (3,)"),
    ("jax", lambda p, y: ((p - y) ** 2).sum(), jax.numpy.ones((2, 3)),
     "it returned shape (); expected (3,), one value per sample (p of shape (2, 3), outputs × samples)"),
])
def test_a_loss_forward_of_the_wrong_shape_names_its_part_and_the_shapes(part, forward, p, message):
    """Before: torch's reshape error from inside the witness, naming neither."""
    loss = guarded(_half_sse_loss(**{part: forward}))
    with pytest.raises(UserCodeError) as error:
        getattr(loss, part)(p, p)
    assert error.value.part == part and message in str(error.value.error)
    assert getattr(guarded(_half_sse_loss()), part)(p, p).shape == (3,)


def _nan_backward(dout, cache):
    return np.where(dout > 0, np.nan, dout), {"g": np.sum(dout * cache, axis=0)}


@pytest.mark.parametrize(("backward", "message"), [
    (_nan_backward, "nan_layer: your backward returned the wrong thing: backward's dx: it returned NaN "
                    "at 3 of 6 entries, the first at index (0, 0)"),
    (lambda dout, cache: (dout, {"g": np.full(2, np.nan)}),
     "nan_layer: your backward returned the wrong thing: backward's grads['g']: it returned NaN at 2 of 2 "
     "entries"),
])
def test_a_layer_returning_nan_names_the_array(backward, message):
    """Before: a DIFFERS with "rel err nan", not saying your code returned NaN nor where."""
    layer = UserLayer("nan_layer", lambda x, params: (x * params["g"], x), backward, torch=_never, jax=_never,
                      parameters={"g": lambda shape: shape})
    forward, backward = layer.pair()
    x, params = np.ones((3, 2)), {"g": np.ones(2)}
    _, cache = forward(x, params, None)
    with pytest.raises(UserCodeError) as error:
        backward(np.array([[1.0, -1.0]] * 3), cache)
    assert message in str(error.value) and error.value.part == "backward"


# --- 5: a time limit on each call ---------------------------------------------------------------
def _sleepy(z, a):
    time.sleep(30)
    return _swish_prime(z, a)


def test_a_derivative_that_does_not_return_is_stopped_at_the_time_limit():
    start = time.monotonic()
    report = check(_swish_part(derivative=_sleepy), 5, time_limit=1)
    assert time.monotonic() - start < 20
    assert report.verdict == RAISED and report.part == "derivative", str(report)
    assert "time limit of 1 s" in report.message and "arguments of shapes (" in report.message


def test_a_rule_that_does_not_return_is_stopped_after_one_network():
    calls = []

    def backprop(params, X, Y):  # and swallows what stops it, the first time
        calls.append(1)
        try:
            time.sleep(30)
        except Exception:
            time.sleep(30)

    start = time.monotonic()
    report = check(UserRule("slow", backprop), 50, time_limit=1)
    assert time.monotonic() - start < 20 and len(calls) == 1  # no shrinking at the limit's cost
    assert report.verdict == RAISED and report.part == "function" and "time limit of 1 s" in report.message


SLOW = textwrap.dedent('''
    import time
    from bpcheck import UserRule

    def backprop(params, X, Y):
        time.sleep(30)

    slow = UserRule("slow", backprop)
''')
ZERO_WIDTH = SLOW + 'zero_width = UserRule("zero_width", backprop, sizes=(4, 0, 3))\n'


def _verify(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess:
    """``bpcheck verify`` as a user runs it: a fresh process, the user's environment."""
    path = tmp_path / "slow_rules.py"
    path.write_text(source)
    argv = [arg.replace("FILE", str(path)) for arg in args]
    return subprocess.run([sys.executable, "-m", "bpcheck", "verify", *argv],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})


def test_verify_stops_a_rule_at_its_time_limit(tmp_path):
    run = _verify(tmp_path, SLOW, "FILE:slow", "--time-limit", "1", "--examples", "5")
    out = " ".join((run.stdout + run.stderr).split())
    assert run.returncode == 1, out
    assert "time limit of 1 s" in out and "Traceback" not in out


@pytest.mark.parametrize(("source", "args", "message"), [
    (ZERO_WIDTH, ("FILE:zero_width",), "sizes[1]=0: every layer needs width >= 1"),
    (SLOW, ("FILE:slow", "--layers", "2,0,3"), "layers=(2, 0, 3): sizes[1]=0"),
    (SLOW, ("FILE:slow", "--time-limit", "0"), "--time-limit: must be a number of seconds >= 0.01"),
])
def test_verify_refuses_a_network_that_cannot_be_drawn(tmp_path, source, args, message):
    run = _verify(tmp_path, source, *args)
    out = " ".join((run.stdout + run.stderr).split())
    assert run.returncode == 2, out
    assert message in out and "Traceback" not in out


def test_a_limit_that_expires_as_it_is_armed_leaves_no_timer_behind(monkeypatch):
    """Before: the timer was armed outside the try, and a signal at once (--time-limit 1e-300)
    escaped with it still armed and its handler installed: the process died of SIGALRM (-14)."""
    real, handler = signal.setitimer, signal.getsignal(signal.SIGALRM)

    def at_once(which, seconds, interval=0.0):
        previous = real(which, seconds, interval)
        if seconds == 0.5:  # the limit's own timer: it expires as it is armed
            signal.getsignal(signal.SIGALRM)(signal.SIGALRM, None)
        return previous

    monkeypatch.setattr(signal, "setitimer", at_once)
    with time_limit(0.5), pytest.raises(TimeLimitExceeded):
        limited(lambda: None, ())
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGALRM) is handler
    assert signal.getitimer(signal.ITIMER_REAL)[1] != 0.5  # not left repeating


def test_a_time_limit_puts_back_an_outer_timer_and_its_handler():
    def outer_handler(signum, frame):
        raise AssertionError("the outer timer must not fire during this test")

    previous = signal.signal(signal.SIGALRM, outer_handler)
    signal.setitimer(signal.ITIMER_REAL, 100)
    try:
        with time_limit(5):
            assert limited(lambda x: x + 1, (1,)) == 2
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 90 < remaining <= 100 and signal.getsignal(signal.SIGALRM) is outer_handler
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_outside_the_main_thread_a_call_runs_unlimited():
    found = []
    with time_limit(0.2):
        worker = threading.Thread(target=lambda: found.append(limited(lambda: time.sleep(0.5) or 1, ())))
        worker.start()
        worker.join()
    assert found == [1]
