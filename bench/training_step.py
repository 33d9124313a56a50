"""One SGD training step of a 784-256-10 sigmoid network, batch 128: manual vs torch vs jax-jit.

Each contender takes a step in its own native form — manual: NumPy arrays, features × samples,
``network.sgd_step`` (input checks included); torch: ``nn.Linear`` layers, autograd and
``torch.optim.SGD``; jax: one ``jax.jit``-compiled function of ``jax.value_and_grad`` and
``optax.sgd``. Loss: ½-squared error, mean over the batch. The three are timed in interleaved
rounds in one run; the table gives the median, the ratio to manual, and GFLOP/s against the
machine's matrix-multiply peak, measured here too (NumPy, a 2048² product).

FLOPs of a step: forward 2N(784·256 + 256·10), weight gradients the same again, and the
error sent back to the hidden layer 2N·10·256 (the input's gradient is not needed).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from rich.console import Console
from tables import show

from manual import network
from manual.initialisers import truncated_normal
from manual.spec import Spec
from reference.jax_ref import require_x64

SIZES, BATCH, LR, ROUNDS, STEPS = (784, 256, 10), 128, 0.1, 15, 20
FLOPS = 2 * BATCH * (2 * (SIZES[0] * SIZES[1] + SIZES[1] * SIZES[2]) + SIZES[2] * SIZES[1])


def matmul_peak(dtype: str, n: int = 2048, repeats: int = 7) -> float:
    """Measured GFLOP/s of an n×n NumPy matrix product (2n³ FLOPs), median of repeats."""
    a, b = (np.random.default_rng(0).standard_normal((n, n)).astype(dtype) for _ in range(2))
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def contenders(dtype: str) -> dict[str, Callable[[], object]]:
    """A zero-argument training step for each implementation, all from the same start."""
    rng = np.random.default_rng(0)
    spec = Spec(SIZES, ("sigmoid", "sigmoid"), "half-sse", "mean", "vector", "cols", dtype)
    params = truncated_normal(spec, rng)
    X = rng.standard_normal((SIZES[0], BATCH)).astype(dtype)
    Y = rng.uniform(size=(SIZES[-1], BATCH)).astype(dtype)

    torch_dtype = getattr(torch, dtype)
    model = torch.nn.Sequential(torch.nn.Linear(*SIZES[:2]), torch.nn.Sigmoid(),
                                torch.nn.Linear(*SIZES[1:]), torch.nn.Sigmoid()).to(torch_dtype)
    with torch.no_grad():
        for layer, k in ((model[0], 1), (model[2], 2)):
            layer.weight.copy_(torch.from_numpy(params[f"W{k}"]))
            layer.bias.copy_(torch.from_numpy(params[f"b{k}"]))
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    x_rows, y_rows = torch.from_numpy(X.T.copy()), torch.from_numpy(Y.T.copy())

    def torch_step() -> None:
        optimizer.zero_grad()
        loss = 0.5 * ((model(x_rows) - y_rows) ** 2).sum(dim=1).mean()
        loss.backward()
        optimizer.step()

    def jax_loss(p, x, y):
        h = jax.nn.sigmoid(x @ p["W1"].T + p["b1"])
        out = jax.nn.sigmoid(h @ p["W2"].T + p["b2"])
        return 0.5 * jnp.mean(jnp.sum((out - y) ** 2, axis=1))

    sgd = optax.sgd(LR)

    @jax.jit
    def jax_step(p, state, x, y):
        _, grads = jax.value_and_grad(jax_loss)(p, x, y)
        updates, state = sgd.update(grads, state, p)
        return optax.apply_updates(p, updates), state

    jax_params = {name: jnp.asarray(value) for name, value in params.items()}
    jax_state = sgd.init(jax_params)
    jx, jy = jnp.asarray(X.T), jnp.asarray(Y.T)

    def jax_run() -> None:
        new, _ = jax_step(jax_params, jax_state, jx, jy)
        jax.block_until_ready(new)

    # The three compute the same step: check once, from the same start, before timing.
    expected = network.sgd_step(spec, params, X, Y, LR)["W1"]
    torch_step()
    jax_w1 = np.asarray(jax_step(jax_params, jax_state, jx, jy)[0]["W1"])
    for got in (model[0].weight.detach().numpy(), jax_w1):
        np.testing.assert_allclose(got, expected, rtol=0, atol=10 * np.finfo(dtype).eps)

    manual_params = params
    return {
        "manual NumPy": lambda: network.sgd_step(spec, manual_params, X, Y, LR),
        "torch (autograd + optim.SGD)": torch_step,
        "jax (jit: value_and_grad + optax.sgd)": jax_run,
    }


def main() -> None:
    require_x64()
    console = Console()
    for dtype in ("float32", "float64"):
        peak = matmul_peak(dtype)
        cases = contenders(dtype)
        for case in cases.values():  # warm up, compile
            case()
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(ROUNDS):
            for name, case in cases.items():
                start = time.perf_counter()
                for _ in range(STEPS):
                    case()
                times[name].append((time.perf_counter() - start) / STEPS * 1e3)
        medians = {name: statistics.median(values) for name, values in times.items()}
        rates = {name: FLOPS / (median / 1e3) / 1e9 for name, median in medians.items()}
        show("training_step", f"one training step, {'-'.join(map(str, SIZES))} sigmoid, batch {BATCH}, "
             f"{dtype} — median of {ROUNDS} rounds × {STEPS} steps; matmul peak {peak:.1f} GFLOP/s",
             ["implementation", "median ms", "× manual", "GFLOP/s", "% of peak"],
             [[name, f"{median:.3f}", f"{median / medians['manual NumPy']:.2f}", f"{rates[name]:.1f}",
               f"{100 * rates[name] / peak:.0f}"] for name, median in medians.items()],
             console, append=dtype != "float32")


if __name__ == "__main__":
    main()
