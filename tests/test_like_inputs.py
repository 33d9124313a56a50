"""A ``like=`` layer whose input is not floats alone, from a user's point of view
(``bpcheck.user.like``): an embedding of integer tokens (some repeated, so a gradient assigned
rather than accumulated is caught) whose backward returns dW alone, and a dropout that draws
its mask with an RNG of its own (replayed: its witnesses use the mask it draws). Their bad
declarations and code are clear errors naming the argument or the part. The examples' layers
(course_layers.py, scratch_layers.py) are checked from Python and from the command line in
``tests/test_like_examples.py``."""

from __future__ import annotations

import numpy as np
import pytest

from bpcheck import UserLayer, check, object_pair
from bpcheck.core.verdicts import AGREES, RAISED, WRONG
from bpcheck.layers.problem import random_problem
from bpcheck.user.like_draws import structures, yours_drawn
from manual.stack import Stack
from manual.stack_text import parse_layers
from tests.assertions import run_cli

EXAMPLES = 10


def _lookup(x, p):
    return p["W"][x], (x, p["W"])


def _accumulated(dout, cache):
    x, W = cache
    dW = np.zeros_like(W)
    np.add.at(dW, x, dout)
    return dW


def embedding(**changes) -> UserLayer:
    return UserLayer("my_embed", changes.pop("forward", _lookup), changes.pop("backward", _accumulated),
                     **({"like": "embedding:3,v5"} | changes))


class Dropout:
    """An object dropout whose mask comes from its own Generator (``mask = rng.random(x.shape) > p``)."""

    def __init__(self, rng=None, p=0.4):
        self.rng, self.p = rng if rng is not None else np.random.default_rng(7), p

    def forward(self, x):
        self.mask = self.rng.random(x.shape) > self.p
        return x * self.mask / (1 - self.p)

    def backward(self, dout):
        return dout * self.mask / (1 - self.p)


def dropout(make=Dropout, **changes) -> UserLayer:
    return UserLayer("my_dropout", *object_pair(make), **({"like": "dropout:p0.4"} | changes))


def test_embedding_tokens_are_integers_in_the_vocabulary_with_one_repeated():
    layer = embedding(like="embedding:3,v1000")
    for stack in structures(layer):
        drawn = yours_drawn(layer, random_problem(stack.replace(dtype="float64"), 3, seed=1))
        tokens = drawn.x
        assert np.issubdtype(tokens.dtype, np.integer) and tokens.min() >= 0 and tokens.max() < 1000
        assert np.unique(tokens).size < tokens.size  # a repeated token: N·T slots from 1000 tokens


def test_a_course_embedding_returning_dw_alone_agrees_and_one_tuple_of_it_too():
    assert check(embedding(), EXAMPLES).verdict == AGREES
    assert check(embedding(backward=lambda d, c: (None, _accumulated(d, c))), EXAMPLES).verdict == AGREES


def test_an_embedding_that_assigns_rather_than_accumulates_is_wrong_on_w():
    def assigned(dout, cache):
        x, W = cache
        dW = np.zeros_like(W)
        dW[x] = dout  # a repeated token keeps one of its rows
        return dW

    report = check(embedding(backward=assigned), EXAMPLES)
    assert report.verdict == WRONG and "WRONG on emb1.W (your W)" in report.message, str(report)
    assert "the gradient assigned, not accumulated, over repeated tokens" in str(report)


def test_an_embedding_table_stored_d_by_v_is_declared_by_its_layout():
    layer = embedding(forward=lambda x, p: (p["E"].T[x], (x, p["E"])),
                      backward=lambda d, c: {"E": _accumulated(d, (c[0], c[1].T)).T},
                      parameters=("E",), layout={"E": "OI"})
    report = check(layer, EXAMPLES)
    assert report.verdict == RAISED and "(None, dW) or (None, grads)" in report.message  # a bare dict
    fixed = embedding(forward=layer.forward, backward=lambda d, c: _accumulated(d, (c[0], c[1].T)).T,
                      parameters=("E",), layout={"E": "OI"})
    assert check(fixed, EXAMPLES).verdict == AGREES


@pytest.mark.parametrize("changes, error, says", [
    ({"like": "embedding:3"}, ValueError, "like='embedding:3': embedding (embedding): the vocabulary must"),
    ({"like": "embedding:3,v0"}, ValueError, "like='embedding:3,v0': embedding:3,v0: option 'v0' is out"),
    ({"layout": "NC"}, ValueError, "layout='NC': embedding:3,v5 reads integer tokens (N, T)"),
    ({"layout": {"W": "IOX"}}, ValueError, "layout['W']='IOX': embedding:3,v5's W has axes 'IO'"),
    ({"like": "dropout:p1.5"}, ValueError, "like='dropout:p1.5': dropout (dropout): the drop probability"),
    ({"rank": 2}, ValueError, "rank=2: embedding:3,v5 takes no samples of that rank"),
])
def test_a_bad_declaration_is_an_error_naming_the_argument(changes, error, says):
    with pytest.raises(error) as raised:
        embedding(**changes)
    assert says in str(raised.value)


def test_a_bad_declaration_is_a_usage_error_from_the_command_line(tmp_path):
    (tmp_path / "bad_embed.py").write_text(
        "from bpcheck import UserLayer\n"
        "emb = UserLayer('emb', lambda x, p: x, lambda d, c: d, like='embedding:4', parameters=('W',))\n")
    out = run_cli(["verify", f"{tmp_path / 'bad_embed.py'}:emb"], 2)
    assert "like='embedding:4'" in out and "embedding:D,v10" in out


def test_tokens_out_of_your_tables_range_name_the_vocabulary_declared():
    report = check(embedding(forward=lambda x, p: (p["W"][:3][x], (x, p["W"]))), EXAMPLES)
    assert report.verdict == RAISED and report.part == "forward", str(report)
    assert "IndexError" in report.message
    assert "tokens (N, T) in [0, 5) for like='embedding:3,v5'" in report.message


def test_tokens_your_code_makes_floats_name_the_tokens_due():
    report = check(embedding(forward=lambda x, p: (p["W"][x.astype(float)], (x, p["W"]))), EXAMPLES)
    assert report.verdict == RAISED and report.part == "forward", str(report)
    assert "arrays used as indices must be of integer" in report.message
    assert "integer tokens (N, T) in [0, 5)" in report.message


def test_an_object_dropout_with_its_own_generator_agrees_on_the_mask_it_draws():
    assert check(dropout(), EXAMPLES).verdict == AGREES


def test_the_mask_is_the_one_your_forward_draws():
    layer = dropout()
    stack = Stack("dropout:p0.4;flatten", (6,), loss="half-sse")
    problem = yours_drawn(layer, random_problem(stack, 3, seed=2))
    drawn = np.random.default_rng(7).random((3, 6)) > 0.4
    assert np.array_equal(problem.masks["drop1"], drawn.astype(float))


@pytest.mark.parametrize("backward, says", [
    (lambda self, dout: dout * self.mask, "unscaled"),
    (lambda self, dout: dout * (self.rng.random(dout.shape) > self.p) / (1 - self.p), "a fresh mask"),
])
def test_a_dropout_backward_unscaled_or_with_a_fresh_mask_is_wrong_on_x(backward, says):
    twin = type("Twin", (Dropout,), {"backward": backward})
    report = check(dropout(twin), EXAMPLES)
    assert report.verdict == WRONG, (says, str(report))
    assert "WRONG on x" in report.message and "not the gradient of your own forward" in report.message, says


def test_numpys_global_rng_is_replayed_and_put_back():
    def forward(x, p):
        mask = np.random.rand(*x.shape) < 0.6  # noqa: NPY002 (a user's habit)
        return x * mask / 0.6, mask

    layer = UserLayer("global_dropout", forward, lambda d, mask: d * mask / 0.6, like="dropout:p0.4")
    np.random.seed(123)  # noqa: NPY002
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    assert check(layer, EXAMPLES).verdict == AGREES
    assert np.array_equal(np.random.get_state()[1], state)  # noqa: NPY002


def test_a_generator_shared_between_calls_cannot_be_replayed_and_says_so():
    shared = np.random.default_rng(0)
    report = check(dropout(lambda: Dropout(shared)), EXAMPLES)
    assert report.verdict == RAISED and report.part == "forward", str(report)
    assert "kept other entries than on an earlier call" in report.message
    assert "a Generator of yours must be made in that call" in report.message
    assert "rank=1" not in report.message  # not a matter of the samples' rank


def test_a_mask_of_the_wrong_shape_is_named():
    class PerFeature(Dropout):
        def forward(self, x):  # one mask per feature, then a shape that is not x's
            self.mask = self.rng.random(x.shape[1:])[:, None] > self.p
            return x * self.mask / (1 - self.p)

    report = check(dropout(PerFeature, rank=1), EXAMPLES)
    assert report.verdict == RAISED and report.part == "forward"
    assert "forward's out" in report.message or "broadcast" in report.message, report.message


def test_your_code_never_changes_our_tokens_or_masks():
    def forward(x, p):
        out = p["W"][x]
        x[...] = 0  # the user's code scribbles on what it was given
        return out, (x, p["W"])

    pair_forward, pair_backward = embedding(forward=forward).pair()
    x, params = np.array([[1, 2, 2]]), {"W": np.arange(15.0).reshape(5, 3)}
    out, cache = pair_forward(x, params, parse_layers("embedding:3,v5")[0])
    assert np.array_equal(x, [[1, 2, 2]]) and out.shape == (1, 3, 3)
    assert pair_backward(np.ones_like(out), cache)[0] is None
