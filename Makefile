# make report — the seed's network, every rule against every witness (sets everything up)
# make test   — the property-test suite under the `ci` Hypothesis profile (sets everything up)
# make bench  — bpcheck beside its peers (torch gradcheck, jax check_grads, a plain finite-difference
#               loop), per-example cost of each witness (MLP family and networks of layers), the catch
#               rate of injected bugs, how arrays are drawn (draw cost, shrinking), the MLP
#               family checked as dense layers, the 784-256-10 training step, the commands' wall
#               times (help, report, verify, each example UserRule), and make test's wall time,
#               peak memory, verified and discarded examples; then every table again in
#               Markdown, into docs/reference/performance.md (not part of make test)
# make docs   — regenerate docs/reference/ from the code (tests/test_docs.py fails when they are stale)
# make fuzz   — HypoFuzz on every core over the property tests for FUZZ_SECONDS, then a replay of
#               every failure it recorded, each with its minimal example (exit 1 when one fails)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HYPOTHESIS_PROFILE ?= ci
PYTEST_ARGS ?= -n auto --dist worksteal  # pytest-xdist: one worker per core; an idle one takes queued tests
FUZZ_SECONDS ?= 600

.PHONY: report test lint bench docs fuzz clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

report: $(STAMP)
	$(BIN)/bpcheck $(ARGS)

test: $(STAMP)
	HYPOTHESIS_PROFILE=$(HYPOTHESIS_PROFILE) $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/peers.py
	$(BIN)/python bench/witnesses.py
	$(BIN)/python bench/layers.py
	$(BIN)/python bench/sensitivity.py
	$(BIN)/python bench/draws.py
	$(BIN)/python bench/dense_stack.py
	$(BIN)/python bench/training_step.py
	$(BIN)/python bench/commands.py
	$(BIN)/python bench/like_layers.py
	$(BIN)/python bench/suite.py
	$(BIN)/python bench/tables.py

# tests/fuzzing.py stops HypoFuzz after FUZZ_SECONDS (FUZZ_ARGS: e.g. --until-failure, or
# test paths). Failures go to the example database, under the keys `pytest` reads as well
# (BPCHECK_EXAMPLE_DB shares them), so the next dev run replays them first too.
FUZZ_ARGS ?=
fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzzing --seconds $(FUZZ_SECONDS) $(FUZZ_ARGS)

docs: $(STAMP)
	$(BIN)/python -m docs.generate

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .hypothesis .pytest_cache .ruff_cache .cache out/bench
