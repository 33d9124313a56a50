"""Your own layer (``bpcheck.UserLayer``): checked alone and inside random networks, from
Python, the command line and pytest; what its code raises or wrongly returns is named."""

from __future__ import annotations

import numpy as np
import pytest

from bpcheck import CheckReport, UserLayer, check, check_layer
from bpcheck.core.verdicts import RAISED, WITNESSES_DIFFER
from bpcheck.layers.strategies import KINK_MARGIN_RELATIVE
from manual.layer_kinds import LAYER_KINDS, Layer
from manual.stack_network import PAIRS
from tests.assertions import run_cli

EXAMPLES = 15


def _affine(x, p):
    return x * p["gamma"][None, :, None, None] + p["beta"][None, :, None, None], (x, p["gamma"])


def _affine_backward(dout, cache):
    x, gamma = cache
    return dout * gamma[None, :, None, None], {"gamma": (dout * x).sum(axis=(0, 2, 3)),
                                               "beta": dout.sum(axis=(0, 2, 3))}


def _affine_mean_beta(dout, cache):
    dx, grads = _affine_backward(dout, cache)
    return dx, grads | {"beta": dout.mean(axis=(0, 2, 3))}


AFFINE = dict(torch=lambda x, p: x * p["gamma"][:, None, None] + p["beta"][:, None, None],
              jax=lambda x, p: x * p["gamma"][:, None, None] + p["beta"][:, None, None],
              parameters={"gamma": lambda shape: shape[:1], "beta": lambda shape: shape[:1]}, rank=3)


def layer(backward=_affine_backward, forward=_affine, name="affine", **changes) -> UserLayer:
    return UserLayer(name, forward, backward, **(AFFINE | changes))


def test_a_right_layer_agrees_alone_and_in_networks_and_leaves_no_trace():
    report = check_layer(layer(), EXAMPLES)
    assert report.passed and report.examples >= EXAMPLES // 2, report.discarded
    assert "agrees with torch, jax and finite differences" in report.message
    assert "affine" not in LAYER_KINDS and "affine" not in PAIRS


def test_a_wrong_backward_is_found_shrunk_and_placed_in_the_layer():
    report = check(layer(_affine_mean_beta), EXAMPLES)
    assert isinstance(report, CheckReport) and report.kind == "layer"  # one report for every kind
    assert report.verdict == "WRONG" and not report.passed
    assert report.rows and all(row.differs for row in report.rows) and report.comparison is not None
    assert report.to_dict()["verdict"] == "WRONG" and report.to_dict()["network"].startswith("affine;flatten")
    assert report.backward_disagrees_with_own_forward
    assert "WRONG on affine1.beta — your backward is not the gradient of your own forward" in report.message
    assert {(f.layer, f.quantity) for f in report.findings} == {("affine1", "beta")}
    assert "on the smallest network Hypothesis found: affine;flatten" in str(report)


def test_a_numpy_forward_that_differs_from_its_torch_and_jax_forwards_is_told_apart():
    def doubled(x, p):
        out, _ = _affine(x, p)
        return 2 * out, (x, 2 * p["gamma"])

    def doubled_backward(dout, cache):
        dx, grads = _affine_backward(dout, cache)
        return dx, {"gamma": 2 * grads["gamma"], "beta": 2 * grads["beta"]}

    report = check_layer(layer(doubled_backward, doubled), EXAMPLES)
    assert report.verdict == "WRONG" and not report.backward_disagrees_with_own_forward
    assert "but that forward differs from your torch and jax forwards" in report.message
    assert any(f.quantity == "forward" for f in report.findings)


def test_what_the_code_raises_is_named_with_the_line():
    def broken(dout, cache):
        raise IndexError("tuple index out of range")

    report = check_layer(layer(broken), EXAMPLES)
    assert report.verdict == RAISED and report.part == "backward"
    assert "affine: your backward raised IndexError('tuple index out of range') at " in str(report)
    assert "test_user_layer.py" in str(report)


def test_wrong_keys_or_shapes_from_backward_are_named():
    def missing(dout, cache):
        dx, grads = _affine_backward(dout, cache)
        return dx, {"gamma": grads["gamma"]}

    report = check_layer(layer(missing), EXAMPLES)
    assert report.verdict == RAISED
    assert "backward's grads have keys ['gamma']; expected ['beta', 'gamma']" in str(report)


def test_your_code_gets_copies_and_cannot_change_bpchecks_arrays():
    def mutating(x, p):
        out, cache = _affine(x, p)
        x *= 0  # a forward that scribbles on its inputs
        p["gamma"][...] = 0
        return out, cache

    forward, _ = layer(forward=mutating).pair()
    x, params = np.ones((2, 3, 2, 2)), {"gamma": np.full(3, 2.0), "beta": np.zeros(3)}
    out, _ = forward(x, params, Layer("affine"))
    assert np.all(x == 1) and np.all(params["gamma"] == 2) and np.all(out == 2)


@pytest.mark.parametrize("changes", [
    {"jax": lambda x, p: 2 * AFFINE["jax"](x, p)},
    {"torch": lambda x, p: AFFINE["torch"](x, {"gamma": p["gamma"].detach(), "beta": p["beta"]})},
])
def test_torch_and_jax_forwards_that_disagree_are_found(changes):
    report = check_layer(layer(**changes), EXAMPLES)
    assert report.verdict == WITNESSES_DIFFER and not report.passed
    assert "your torch and jax forwards disagree" in report.message


@pytest.mark.parametrize(("changes", "says"), [
    ({"forward": lambda x, p: (_ for _ in ()).throw(KeyError("three"))},
     "affine: your forward raised KeyError('three')"),
    ({"forward": lambda x, p: (np.concatenate([_affine(x, p)[0]] * 2, axis=1), (x, p["gamma"]))},
     "your code returned the wrong thing: forward's out: it returned an array of shape ("),
    ({"forward": lambda x, p: (_affine(x, p)[0].astype(np.float16), (x, p["gamma"]))},
     "forward's out: it returned an array of dtype float16; expected an ndarray of the output's shape"),
    ({"parameters": {"gamma": lambda shape: (shape[5],), "beta": lambda shape: shape[:1]}},
     "affine: your parameters['gamma'] raised IndexError"),
    ({"torch": lambda x, p: x[7]}, "affine: your torch raised IndexError"),
    ({"fits": lambda shape: shape[5] > 1}, "affine: your fits raised IndexError"),
])
def test_what_each_part_raises_or_returns_wrongly_is_named(changes, says):
    report = check_layer(layer(**changes), EXAMPLES)
    assert report.verdict == RAISED and says in str(report), str(report)


@pytest.mark.parametrize(("changes", "message"), [
    ({"name": "conv2d"}, "is a built-in layer or activation"),
    ({"name": "two words"}, "a layer's name is an identifier"),
    ({"jax": None}, "torch= was given without jax=: give both, or neither"),
    ({"jax": 3}, "jax=3 must be callable"),
    ({"parameters": {"gamma": (3,)}}, "parameters must map each parameter's name to a function"),
    ({"rank": 4}, "rank=4: expected 3"),
])
def test_a_bad_declaration_is_an_error_naming_the_field(changes, message):
    with pytest.raises((ValueError, TypeError), match=message.replace("(", r"\(").replace(")", r"\)")):
        layer(**changes)


def test_verify_checks_a_layer_from_the_command_line(tmp_path):
    module = tmp_path / "my_layers.py"
    module.write_text(
        "import numpy as np\nfrom bpcheck import UserLayer\n"
        "def fwd(x, p):\n    return np.tanh(x) * 2, x\n"
        "def bwd(dout, x):\n    return dout * 2 * (1 - np.tanh(x) ** 2), {}\n"
        "def slip(dout, x):\n    return dout * (1 - np.tanh(x) ** 2), {}\n"
        "import torch, jax.numpy as jnp\n"
        "twice_tanh = UserLayer('twice_tanh', fwd, bwd, torch=lambda x, p: 2 * torch.tanh(x), "
        "jax=lambda x, p: 2 * jnp.tanh(x))\n"
        "twice_tanh_slip = UserLayer('twice_tanh', fwd, slip, torch=twice_tanh.torch, jax=twice_tanh.jax)\n")
    assert "twice_tanh: agrees with torch, jax" in run_cli(["verify", f"{module}:twice_tanh",
                                                          "--examples", "10"], 0)
    out = run_cli(["verify", f"{module}:twice_tanh_slip", "--examples", "10"], 1)
    assert "twice_tanh: WRONG on" in out and "twice_tanh1 (twice_tanh) x" in out
    assert "twice_tanh1 (twice_tanh) x: rel err 5.00e-01" in out



def test_only_shapes_the_layer_fits_are_drawn_and_wider_ones_are():
    seen = []

    def recording(x, p):
        seen.append(x.shape[1:])
        return _affine(x, p)

    report = check_layer(layer(forward=recording, fits=lambda shape: shape[0] % 2 == 0 and shape[0] >= 4),
                         EXAMPLES)
    assert report.passed and seen
    assert all(shape[0] in (4, 6) for shape in seen), set(seen)
    assert {shape[0] for shape in seen} == {4, 6}


def test_fits_is_asked_about_each_shape_once_a_search_however_many_networks_are_drawn():
    asked = []

    def fits(shape):
        asked.append(shape)
        return shape[0] >= 2

    counts = []
    for examples in (3, 12):
        asked.clear()
        assert check_layer(layer(fits=fits), examples).passed
        counts.append(len(asked))
    assert counts[0] == counts[1] > 0, counts  # the pool is built once a search, not once a draw


def test_declared_kinks_keep_the_draws_away_from_them():
    def prelu(x, p):
        a = p["a"][None, :, None, None]
        return np.where(x > 0, x, a * x), (x, a)

    def prelu_backward(dout, cache):
        x, a = cache
        grad_a = np.where(x > 0, 0.0, x * dout).sum(axis=(0, 2, 3)).astype(x.dtype)
        return np.where(x > 0, dout, a * dout), {"a": grad_a}

    import jax.numpy as jnp
    import torch

    seen = []
    declared = UserLayer("prelu", lambda x, p: (seen.append(np.min(np.abs(x)) / np.max(np.abs(x))),
                                               prelu(x, p))[1], prelu_backward,
                         torch=lambda x, p: torch.where(x > 0, x, p["a"][:, None, None] * x),
                         jax=lambda x, p: jnp.where(x > 0, x, p["a"][:, None, None] * x),
                         parameters={"a": lambda shape: shape[:1]}, rank=3, kinks=(0.0,))
    assert check_layer(declared, EXAMPLES).passed
    assert min(seen) >= KINK_MARGIN_RELATIVE  # of each input's scale, on every forward that ran


def _gated(x, p):
    """A sequence layer of someone's own: out = g ⊙ tanh(x) at every step, g per feature."""
    t = np.tanh(x)
    return p["g"] * t, (t, p["g"])


def _gated_backward(dout, cache, slip=False):
    t, g = cache
    dt = t if slip else 1 - t * t  # the slip: tanh′ taken as the value
    return dout * g * dt, {"g": (dout * t).sum(axis=(0, 1))}


@pytest.mark.parametrize("slip", [False, True])
def test_a_sequence_layer_of_rank_two_is_checked_alone_and_after_dense_at_every_step(slip):
    import torch

    gated = UserLayer("gated", _gated, lambda d, c: _gated_backward(d, c, slip),
                      torch=lambda x, p: p["g"] * torch.tanh(x),
                      jax=lambda x, p: p["g"] * __import__("jax").numpy.tanh(x),
                      parameters={"g": lambda shape: shape[-1:]}, rank=2)
    report = check_layer(gated, EXAMPLES)
    assert report.passed is not slip and report.verdict == ("WRONG" if slip else "agrees")
    if slip:
        assert report.backward_disagrees_with_own_forward
        assert len(report.counterexample.stack.input_shape) == 2  # (T, D) samples
        assert {(f.layer, f.quantity) for f in report.findings} == {("gated1", "x")}


def _gated_tanh(x, p):
    """Someone's per-step gate, tanh(x U) ⊙ σ(x V), with the textbook backward: it saturates
    where |x U| is large, inside, where neither the reruns nor κ_out can see."""
    from scipy.special import expit

    a, b = x @ p["U"], x @ p["V"]
    t, s = np.tanh(a), expit(b)
    return t * s, (x, p, t, s)


def _gated_tanh_backward(dout, cache):
    x, p, t, s = cache
    da, db = dout * s * (1 - t * t), dout * t * s * (1 - s)
    flat = x.reshape(-1, x.shape[-1])
    return da @ p["U"].T + db @ p["V"].T, {"U": flat.T @ da.reshape(flat.shape[0], -1),
                                           "V": flat.T @ db.reshape(flat.shape[0], -1)}


@pytest.mark.parametrize("slip", [False, True])
def test_a_right_layer_that_saturates_inside_is_not_a_false_alarm_and_a_slip_still_differs(slip):
    """A new user's correct gate was reported WRONG at x·U ≈ 11 (1 − tanh² from a rounded tanh
    differs from torch's by κ·u): torch's float32 answer now bounds what the insides may round,
    and the same gate with σ′ taken as σ is still found."""
    import jax
    import jax.numpy as jnp
    import torch

    def backward(dout, cache):
        if not slip:
            return _gated_tanh_backward(dout, cache)
        x, p, t, s = cache
        return _gated_tanh_backward(dout, (x, p, t, np.sqrt(s)))  # σ′ from √σ: wrong wherever σ < 1

    gated = UserLayer("gate", _gated_tanh, backward,
                      torch=lambda x, p: torch.tanh(x @ p["U"]) * torch.sigmoid(x @ p["V"]),
                      jax=lambda x, p: jnp.tanh(x @ p["U"]) * jax.nn.sigmoid(x @ p["V"]),
                      parameters={"U": lambda s: (s[-1], s[-1]), "V": lambda s: (s[-1], s[-1])}, rank=2)
    report = check_layer(gated, 60)
    assert report.passed is not slip, report.message
    if slip:
        assert report.verdict == "WRONG" and report.backward_disagrees_with_own_forward


def test_a_counterexample_prints_each_array_in_its_shape():
    from bpcheck.core.compare import RuleReport
    from bpcheck.layers.problem import random_problem
    from bpcheck.user.layer_report import layer_text
    from manual.stack import Stack

    problem = random_problem(Stack("dense:2;flatten", (3,)), 2)
    report = CheckReport("dense", "WRONG", 1, "dense: WRONG", problem, comparison=RuleReport(None, []),
                         kind="layer")
    text = layer_text(report)
    W = problem.params["dense1.W"]
    assert "  dense1.W (2, 3) = [[" in text  # rows, not 6 numbers in a line
    assert "\n" + " " * (len("  dense1.W (2, 3) = ") + 1) + f"[{W[1, 0]: .6f}," in text
    assert "\n\n" not in text
