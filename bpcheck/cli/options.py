"""The commands' options: their parser (``Parser``), the network options every comparison command
shares, and the problem they describe; each value is checked by its argparse ``type=``
(``bpcheck.cli.validators``: a bad value is a usage error naming its option, exit 2)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from bpcheck.cli.limits import check_scale
from bpcheck.cli.validators import (
    JSON,
    MAX_OPTIMIZER_STEPS,
    count_up_to,
    finite_differences,
    input_shape,
    int_list,
    name_list,
    natural,
    output_path,
    positive_int,
    rule_list,
    unknown_name,
)
from bpcheck.core.datasets import (
    IRIS_CLASSES,
    IRIS_FEATURES,
    iris_data,
    iris_split,
    random_data,
    seed_program_hidden_width,
)
from bpcheck.mlp.memory import check_memory, mlp_memory
from bpcheck.mlp.mutants import MUTANTS, find_rule
from bpcheck.mlp.problem import Problem
from manual.initialisers import truncated_normal
from manual.optim import OPTIMIZERS
from manual.rules import RULES, UpdateRule
from manual.spec import ACTIVATIONS, BIAS_STYLES, DTYPES, LAYOUTS, LOSSES, REDUCTIONS, Spec


class Parser(argparse.ArgumentParser):
    """argparse, with two mends: an option's value may start with ``-`` and a digit
    (``--input-shape -1,8,8`` reaches its validator, as ``--input-shape=-1,8,8`` does), and
    ``args.given`` names the options given (those whose default is None in ``LATE_DEFAULTS``
    get their default afterwards, so that a default can be told from the same value given)."""

    def parse_known_args(self, args=None, namespace=None):
        import sys
        argv = list(sys.argv[1:] if args is None else args)
        takes_value = {option for option, action in self._option_string_actions.items()
                       if action.nargs is None and action.option_strings}
        joined, index = [], 0
        while index < len(argv):
            token = argv[index]
            if (token in takes_value and index + 1 < len(argv)
                    and re.match(r"-[\d.]", argv[index + 1])):
                joined.append(f"{token}={argv[index + 1]}")
                index += 2
                continue
            joined.append(token)
            index += 1
        parsed, extras = super().parse_known_args(joined, namespace)
        parsed.given = {name for name, value in vars(parsed).items()
                        if name != "given" and value is not None
                        and value != self.get_default(name)}
        for name, default in LATE_DEFAULTS.items():
            if getattr(parsed, name, default) is None:
                setattr(parsed, name, default)
            elif hasattr(parsed, name):
                parsed.given.add(name)
        return parsed, extras


#: Options whose default is filled in after parsing (``Parser``): given or not is then known.
LATE_DEFAULTS = {"samples": 8}


def parse_options(text: str | None) -> dict:
    """``key=value,…`` → hyperparameters (numbers, true/false, or a word such as ``inside``)."""
    options: dict = {}
    for part in filter(None, (text or "").split(",")):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"--optimizer-options: expected key=value, got {part!r}")
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            options[key.strip()] = lowered == "true"
        else:
            try:
                options[key.strip()] = float(value)
            except ValueError:
                options[key.strip()] = value.strip()
    return options


def rule_names() -> str:
    """The registered rules and catalogued mutants a command can name, listed."""
    return ", ".join([*RULES, *MUTANTS])


def known_rule(name: str) -> UpdateRule:
    """The registered rule or catalogued mutant ``name``, else a ValueError that lists them."""
    rule = find_rule(name)
    if rule is None:
        raise ValueError(unknown_name(name, [*RULES, *MUTANTS]))
    return rule




#: What ``--input-shape`` without ``--network`` is told (an MLP's input width is ``--layers``').
INPUT_SHAPE_ALONE = "--input-shape needs --network (the MLP's input width is --layers' first)"


def described(doc: str | None) -> str:
    """A command's docstring as its --help description (reStructuredText quotes removed)."""
    return (doc or "").replace("``", "")


def build_parser(prog: str = "bpcheck") -> argparse.ArgumentParser:
    """The comparison's options; ``prog`` names the command in usage and errors."""
    parser = Parser(
        prog=prog,
        description="Compare hand-derived backpropagation rules with PyTorch, JAX and finite "
                    "differences. Without options: the seed's network on iris. Other commands "
                    "(each takes --help): `bpcheck verify MODULE:NAME` property-checks your own "
                    "backprop, activation, loss or layer; `bpcheck optim` tabulates where "
                    "torch.optim and optax differ; `bpcheck diagnose RULE` says what explains a "
                    "rule's disagreement; `bpcheck mutants` runs the mutation gate; `bpcheck "
                    "train`, `bpcheck sweep RULE` and `bpcheck report RULE` show what a rule's "
                    "error costs.",
    )
    parser.add_argument("--layers", type=int_list, metavar="F,H,…,C",
                        help="layer widths (default: the seed program's 4,H,3 with its random H)")
    parser.add_argument("--activations", type=name_list, default=None, metavar="A,…",
                        help=f"one per layer after the input, from {list(ACTIVATIONS)} "
                             "(leaky_relu:SLOPE sets a slope; default: sigmoid everywhere)")
    parser.add_argument("--network", metavar="LAYERS", default=None,
                        help="a network of layers instead of an MLP, e.g. "
                             "'conv2d:8,k3,s1,p1;relu;max_pool2d:k2;flatten;dense:10' "
                             "(docs/tutorial/layer.md); random data of --input-shape")
    parser.add_argument("--input-shape", type=input_shape, default=None, metavar="C,H,W|T,D|F",
                        help="one sample's shape for --network (default 1,8,8): an image, T steps "
                             "of D features, F features, or T tokens before an embedding")
    parser.add_argument("--loss", default=None, choices=list(LOSSES),
                        help="the loss (default half-sse, the seed's; softmax-ce-labels with --network)")
    parser.add_argument("--l2", type=float, default=0.0, help="λ of the penalty λ/2 Σ‖W‖²")
    parser.add_argument("--l2-biases", action="store_true",
                        help="the penalty λ/2‖·‖² covers biases too")
    parser.add_argument("--reduction", default=None, choices=REDUCTIONS,
                        help="the per-sample losses summed or averaged (default sum; mean with "
                             "--network)")
    parser.add_argument("--bias", default="node", choices=BIAS_STYLES,
                        help="node: a bias column appended to each W_k, the seed's; vector: "
                             "separate b_k (default node)")
    parser.add_argument("--layout", default="cols", choices=LAYOUTS,
                        help="cols: X is features × samples, the seed's; rows: samples × features "
                             "(default cols)")
    parser.add_argument("--dtype", default="float64", choices=DTYPES,
                        help="dtype the rules compute in (witnesses always use float64)")
    parser.add_argument("--data", default="auto", choices=("auto", "iris", "random"),
                        help="auto: iris when the layers are 4,…,3, else random")
    parser.add_argument("--samples", type=positive_int, default=None,
                        help="batch size for --data random, and for --network (default 8)")
    parser.add_argument("--lr", type=float, default=0.001, help="learning rate η")
    parser.add_argument("--seed", type=natural, default=0, help="seeds data order, width and init")
    parser.add_argument("--rules", type=rule_list, default=None, metavar="R1,R2",
                        help=f"rules to compare (default: all of {list(RULES)})")
    parser.add_argument("--optimizer", choices=list(OPTIMIZERS), default=None,
                        help="also train with this optimizer for --steps steps: manual gradients + "
                             "manual optimizer vs autodiff + torch.optim / optax, error per step")
    parser.add_argument("--optimizer-options", metavar="K=V,…", default=None,
                        help="hyperparameters besides --lr, e.g. beta1=0.8,eps_placement=inside")
    parser.add_argument("--steps", type=count_up_to(MAX_OPTIMIZER_STEPS), default=None,
                        help=f"training steps for --optimizer (default 10, at most {MAX_OPTIMIZER_STEPS})")
    parser.add_argument("--finite-differences", type=finite_differences, default="auto",
                        metavar="all|off|auto|sample:K",
                        help="which parameter entries finite differences check: all, none, K random "
                             "ones, or auto (along random directions of each parameter, entry by "
                             "entry only where the witnesses part)")
    parser.add_argument("--json", metavar="PATH", type=output_path("--json", JSON),
                        help="also write the results as JSON (its directory must exist)")
    return parser


def build_problem(args: argparse.Namespace) -> tuple[Problem, str]:
    """The problem the options describe, and a one-line description of its data."""
    if getattr(args, "network", None) is not None or getattr(args, "input_shape", None) is not None:
        raise ValueError("--network and --input-shape work with `bpcheck` itself (the comparison), "
                         "not with this command yet")
    rng = np.random.default_rng(args.seed)
    fits_iris = args.layers is None or (args.layers[0], args.layers[-1]) == (IRIS_FEATURES, IRIS_CLASSES)
    source = ("iris" if fits_iris else "random") if args.data == "auto" else args.data
    layers = args.layers
    if layers is None:
        n_train = len(iris_split(np.random.default_rng(args.seed))[1])
        layers = (IRIS_FEATURES, seed_program_hidden_width(n_train, rng), IRIS_CLASSES)
    n_samples = len(iris_split(np.random.default_rng(args.seed))[1]) if source == "iris" else args.samples
    check_memory(mlp_memory(tuple(layers), n_samples),
                 "--layers" + (f" with --samples {args.samples}" if source == "random" else ""))
    activations = args.activations or ("sigmoid",) * (len(layers) - 1)
    with _naming_options():
        spec = Spec(layers, activations, args.loss or "half-sse", args.reduction or "sum", args.bias,
                    args.layout,
                    args.dtype, args.l2, args.l2_biases)
    if source == "iris":
        if "samples" in getattr(args, "given", ()):
            raise ValueError(f"--samples {args.samples}: iris has its own training split of "
                             f"{len(iris_split(np.random.default_rng(args.seed))[1])} samples; "
                             "--samples sets the batch of --data random")
        X, Y = iris_data(spec, rng)
        about = f"iris training split ({len(X) if args.layout == 'rows' else X.shape[1]} samples)"
    else:
        X, Y = random_data(spec, args.samples, rng)
        about = f"random data ({args.samples} samples)"
    with _naming_options():
        problem = Problem(spec, truncated_normal(spec, rng), X, Y, args.lr)
    steps = (args.steps or 10) if getattr(args, "optimizer", None) else 1
    check_scale(problem, steps if isinstance(steps, int) and steps > 0 else 1)
    return problem, about


#: The option that sets each field a Spec or Problem error starts with.
OPTION_OF = {"sizes": "--layers", "activations": "--activations", "loss": "--loss",
             "reduction": "--reduction", "bias": "--bias", "layout": "--layout", "dtype": "--dtype",
             "l2": "--l2", "l2_biases": "--l2-biases", "lr": "--lr"}


@contextmanager
def _naming_options() -> Iterator[None]:
    """Errors about a field (``sizes[1]=0: …``) say which option set it (``--layers: …``)."""
    try:
        yield
    except (ValueError, TypeError) as error:
        field = re.match(r"[a-z0-9_]+", str(error))
        option = OPTION_OF.get(field.group() if field else "")
        if option is None:
            raise
        raise type(error)(f"{option}: {error}") from error

