"""What the MLP family would cost as networks of layers: the same networks, checked both ways.

Could the MLP family compile to a dense-only network of layers (``manual.stack.from_spec``)
and drop its own engine? Only if that cost at most 1.5× as much. Measured side by side, on the same
numbers: 30 random MLP problems as the tests draw them (``bpcheck.mlp.strategies.problems``,
float64, no penalty, no probability-output loss, widths ≤ 16, 1–3 hidden layers), each
checked in full (every witness, finite differences, the allowances, the derived rule's rows)
by the MLP engine (``ask_witnesses`` + ``compare_rule``) and, converted, by the layers' engine
(``ask_stack_witnesses`` + ``compare_stack_rule``). Milliseconds per example, median of
interleaved rounds after a warm-up round (jax compiles every structure once), and the ratio.
"""

from __future__ import annotations

import statistics

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rounds import interleaved
from tables import show

from bpcheck.core.runtime import one_thread
from bpcheck.layers.compare import DERIVED, ask_stack_witnesses, compare_stack_rule
from bpcheck.layers.problem import StackProblem
from bpcheck.mlp.compare import ask_witnesses, compare_rule
from bpcheck.mlp.strategies import problems, specs
from manual.rules import RULES
from manual.spec import ACTIVATIONS, LOSSES, parse_activation
from manual.stack import from_spec, from_spec_arrays

COUNT, ROUNDS = 30, 5


def drawn() -> list:
    """(MLP problem, the same numbers as a StackProblem) pairs."""
    found = []
    losses = [name for name, record in LOSSES.items() if not record.probability_outputs]

    @settings(max_examples=COUNT, database=None, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def draw(data):
        spec = data.draw(specs(max_hidden_layers=3, l2=0.0, loss=data.draw(st.sampled_from(losses))).filter(
            lambda s: not ACTIVATIONS[parse_activation(s.activations[-1])[0]].output_only))
        problem = data.draw(problems(st.just(spec)))
        params, x, y = from_spec_arrays(spec, problem.params, problem.X, problem.Y)
        found.append((problem, StackProblem(from_spec(spec), params, x, y, lr=problem.lr)))

    draw()
    return found


def mlp_engine(pair) -> None:
    problem = pair[0]
    compare_rule(RULES["derived"], problem, ask_witnesses(problem))


def layers_engine(pair) -> None:
    problem = pair[1]
    compare_stack_rule(DERIVED, problem, ask_stack_witnesses(problem))


def main() -> None:
    with one_thread():
        pairs = drawn()
        times = interleaved({"MLP engine": mlp_engine, "layers engine": layers_engine}, pairs, ROUNDS)
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["layers engine"] / medians["MLP engine"]
    show("dense_stack", f"The same {len(pairs)} MLPs checked by each engine (ms per example, median of "
         f"{ROUNDS} interleaved rounds)", ["engine", "ms per example", "× the MLP engine"],
         [[name, f"{value:.2f}", f"{value / medians['MLP engine']:.2f}"] for name, value in medians.items()])
    print(f"layers engine / MLP engine: {ratio:.2f} (at most 1.5 would let the family compile to it)")


if __name__ == "__main__":
    main()
