"""Seconds a user waits for ``bpcheck verify`` of a ``like=`` layer (``bpcheck.user.like``) with
200 networks, in a fresh process each, median of ROUNDS interleaved rounds: the course's conv
and affine layers, the NHWC library's conv, the course's LSTM and its self- and cross-attention
(examples/; cross-attention's 200 are draws of its three inputs), and three layers of the user's
own kind: an RMS norm written once against ``xp`` and with its three forwards, and a swish gate
with its NumPy forward alone (issue 30's target for a user layer: ≤ 20 s), each agreeing. The
first round starts with an empty jax cache (every structure of the pool compiles), the later
ones read it.
The target (issue 29): ≤ 20 s. Beside them, two more of issue 29's waits: a layer whose backward
raises on every call (``bench/crashing_layer.py``; ≤ 3 s to its report) and a user loss's first
run, every round with jax's cache off (``examples/one_forward.py:huber``; ≤ 30 s).
Run with ``make bench`` or ``python bench/like_layers.py``.
"""

from __future__ import annotations

import statistics

from commands import BPCHECK, NO_CACHE, interleaved
from tables import show

ROUNDS, EXAMPLES = 3, 200
TARGETS = ("examples.course_layers:conv", "examples.course_layers:affine", "examples.nhwc_layers:conv",
           "examples.course_layers:lstm", "examples.attention_layers:self_attention",
           "examples.attention_layers:cross_attention", "examples.one_forward:rms_norm",
           "examples.custom_layers:rms_norm", "examples.one_forward:swish_gate")


#: label → (target, extra environment, exit code due)
OTHERS = {"bench/crashing_layer.py:layer (raises at once)": ("bench/crashing_layer.py:layer", {}, 1),
          "examples/one_forward.py:huber (a loss, jax cache off)": ("examples/one_forward.py:huber",
                                                                    NO_CACHE, 0)}


def main() -> None:
    commands = {target: ([*BPCHECK, "verify", target, "--examples", str(EXAMPLES)], {}) for target in TARGETS}
    commands |= {label: ([*BPCHECK, "verify", target, "--examples", str(EXAMPLES)], env, code)
                 for label, (target, env, code) in OTHERS.items()}
    seconds, said = interleaved(commands, ROUNDS)
    show("like_layers", f"seconds per bpcheck verify of a user's layer or loss, {EXAMPLES} networks, "
         f"fresh process each (median of {ROUNDS} interleaved rounds; the first with an empty jax cache)",
         ["target", "first line printed", "first round s", "median s"],
         [[target, said[target][:50], f"{times[0]:.2f}", f"{statistics.median(times):.2f}"]
          for target, times in seconds.items()])


if __name__ == "__main__":
    main()
