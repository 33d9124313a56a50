"""Seconds a user waits for ``bpcheck verify`` of a ``like=`` layer (``bpcheck.user.like``) with
200 networks, in a fresh process each, median of ROUNDS interleaved rounds: the course's conv
and affine layers, the NHWC library's conv and the course's LSTM (examples/), each agreeing. The
first round starts with an empty jax cache (every structure of the pool compiles), the later
ones read it.
The target (issue 29): ≤ 20 s. Run with ``make bench`` or ``python bench/like_layers.py``.
"""

from __future__ import annotations

import os
import statistics
import tempfile

from commands import BPCHECK, run_once
from tables import show

ROUNDS, EXAMPLES = 3, 200
TARGETS = ("examples.course_layers:conv", "examples.course_layers:affine", "examples.nhwc_layers:conv",
           "examples.course_layers:lstm")


def main() -> None:
    seconds: dict[str, list[float]] = {target: [] for target in TARGETS}
    said: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as cache:  # the user's own cache is left alone
        env = {key: value for key, value in os.environ.items() if not key.startswith("JAX_")}
        env["XDG_CACHE_HOME"] = cache
        for _ in range(ROUNDS):
            for target in TARGETS:
                argv = [*BPCHECK, "verify", target, "--examples", str(EXAMPLES)]
                elapsed, said[target] = run_once(argv, env)
                seconds[target].append(elapsed)
    show("like_layers", f"seconds per bpcheck verify of a like= layer, {EXAMPLES} networks, fresh process "
         f"each (median of {ROUNDS} interleaved rounds; the first with an empty jax cache)",
         ["target", "first line printed", "first round s", "median s"],
         [[target, said[target][:50], f"{times[0]:.2f}", f"{statistics.median(times):.2f}"]
          for target, times in seconds.items()])


if __name__ == "__main__":
    main()
