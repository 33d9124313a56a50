"""``length=`` pins every sequence's steps: a course RNN whose BPTT is truncated after 7 steps is
right on the 1–7 steps bpcheck draws, and caught at T = 8; a course LSTM at T = 8 agrees and its
slip is caught. Written as a user writes them (examples/course_layers.py), declared with like=."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from bpcheck import UserLayer, check
from bpcheck.core.verdicts import AGREES, WRONG

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import course_layers as course


def rnn_backward_truncated_at_7(dh, cache):
    return course.rnn_backward(dh, cache, window=7)


def test_a_bptt_truncated_after_7_steps_hides_below_t_8_and_is_caught_at_t_8():
    layer = course._rnn(rnn_backward_truncated_at_7)
    assert check(layer, examples=20).verdict == AGREES  # T ≤ 7: the window never drops a step
    pinned = check(replace(layer, length=8), examples=20)
    assert pinned.verdict == WRONG, pinned
    assert pinned.counterexample.x.shape[1] == 8
    assert {"rnn1.W_hh (your Wh)", "x"} <= set(pinned.message.split(" — ")[0].removeprefix(
        "vanilla_rnn: WRONG on ").split(", ")), pinned.message


@pytest.mark.parametrize(("backward", "verdict"), [(course.lstm_backward, AGREES),
                                                   (course.lstm_backward_slip, WRONG)],
                         ids=["right", "slip"])
def test_an_lstm_at_t_8_agrees_and_its_slip_is_caught(backward, verdict):
    report = check(replace(course._lstm(backward), length=8), examples=10)
    assert report.verdict == verdict, report
    if verdict == WRONG:
        assert report.counterexample.x.shape[1] == 8


@pytest.mark.parametrize(("length", "words"), [(0, "length=0 must be an int from 1 to 64"),
                                               (8.0, "length=8.0 must be an int"),
                                               (8, "length=8 pins a sequence's steps; dense_layer")])
def test_a_bad_length_is_refused_naming_it(length, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(")):
        UserLayer("dense_layer", course.affine.forward, course.affine.backward, like="dense:3",
                  parameters=("w", "b"), layout={"w": "IO"}, length=length)
