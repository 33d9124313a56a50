"""The sections of ``bpcheck report RULE --network LAYERS``: the comparison on the network's
random data, the layer-by-layer diagnosis, the sweep over dtype, batch and input scale, and
training curves on digits beside the derived layers where the network takes digits' images."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bpcheck.cli.plots import plot_curves, plot_sweep
from bpcheck.core.verdicts import DIFFERS, INCONCLUSIVE

Section = tuple[str, object]  # heading, and text, a (header, rows) table or a PNG data URI


def network_sections(rule, problem, seed: int, epochs: int, lrs: tuple[float, ...], png,
                     say=lambda what: None) -> list[Section]:
    """(heading, content) pairs for ``rule`` (a ``StackRule``) on ``problem`` (a
    ``StackProblem`` of ``seed``); ``png(path)`` turns a written plot into a data URI."""
    from bpcheck.cli.network import network_header
    from bpcheck.layers.compare import compare_stack
    from bpcheck.layers.diagnose import diagnose_layers
    from bpcheck.layers.sweep import AXES, sweep

    say("comparing with the witnesses")
    report = compare_stack(problem, [rule])[0][0]
    rows = [[f"{r.parameter} {'×'.join(map(str, r.shape))}", r.quantity, r.witness, f"{r.error.max_abs:.2e}",
             f"{r.error.rel:.2e}", f"{r.tolerance:.2e}", r.verdict] for r in report.rows]
    out: list[Section] = [
        ("Network", network_header(problem, seed).replace("[", "").replace("]", "")),
        ("Comparison with the witnesses", (["param", "quantity", "witness", "max |err|", "rel err",
                                            "tolerance", "verdict"], rows))]
    if report.verdict == DIFFERS:
        say("diagnosing")
        out.append(("Diagnosis: each layer alone against torch (float64, random dout)",
                    (["layer", "quantity", "rel err", "explained by"],
                     [[f"{f.layer} ({f.kind})", f.quantity, f"{f.error:.2e}",
                       "; ".join(f.explained_by) or "no nearby layer explains it"]
                      for f in diagnose_layers(rule, problem)])))
    elif report.verdict == INCONCLUSIVE:
        out.append(("Diagnosis", f"inconclusive here, nothing to explain: {report.saturation}"))
    else:
        out.append(("Diagnosis", "the rule agrees with every witness here: nothing to explain"))
    with tempfile.TemporaryDirectory() as scratch:
        say("sweeping")
        points = sweep(rule, problem.stack, repeats=3)
        plot_sweep(points, rule.name, Path(scratch) / "sweep.png", AXES, "gradient")
        out += [("Sweep: relative error by setting",
                 (["setting", "value", "median", "largest"],
                  [[p.axis, str(p.value), f"{p.median:.3e}", f"{p.largest:.3e}"] for p in points])),
                ("Sweep plot", png(Path(scratch) / "sweep.png"))]
        out += _training(rule, problem.stack, epochs, lrs, Path(scratch), png, say)
    return out


def _training(rule, stack, epochs: int, lrs: tuple[float, ...], scratch: Path, png, say) -> list[Section]:
    """Training curves on digits for the rule beside the derived layers, from one start; or why
    the network cannot train on digits."""
    from bpcheck.core.datasets import split
    from bpcheck.layers.compare import DERIVED
    from bpcheck.layers.train import DIGITS_INPUT, initial_weights, train_stack_curve

    data = split("digits", 0)
    if stack.input_shape != DIGITS_INPUT or stack.per_step or stack.classes != data.classes:
        return [("Training", f"not trained: the report trains on digits' {'×'.join(map(str, DIGITS_INPUT))} "
                             f"images of {data.classes} classes; this network takes "
                             f"{'×'.join(map(str, stack.input_shape))} samples and gives "
                             f"{stack.shapes[-1]} outputs (bpcheck train --task trains sequence models)")]
    counted = f"{epochs} epoch{'s' * (epochs != 1)}"
    say(f"training on digits ({counted})")
    params, buffers = initial_weights(stack, 0)
    rules = {DERIVED.name: DERIVED, rule.name: rule}.values()
    curves = [train_stack_curve(r, stack, params, buffers, data, lr, epochs, 32, 0, "digits")
              for r in rules for lr in lrs]
    plot_curves(curves, "digits", scratch / "train.png")
    same = rule.name != DERIVED.name and all(
        mine.loss == theirs.loss for mine, theirs in zip(curves[len(lrs):], curves[:len(lrs)], strict=True))
    note = [("Training: what it shows", f"{rule.name} trains exactly as {DERIVED.name} here: its mistake "
                                        "reaches no parameter's step (∂L/∂x of the first layer is "
                                        "never used)")] if same else []
    return [*note, (f"Training on digits ({counted}, batch 32, same start and order)",
             (["rule", "η", "final loss", "test accuracy"],
              [[c.rule, f"{c.lr:g}", f"{c.loss[-1]:.4g}" if c.loss else "diverged",
                f"{c.test_accuracy[-1]:.3f}" if c.test_accuracy else "diverged"] for c in curves])),
            ("Training curves", png(scratch / "train.png"))]
