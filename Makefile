# make report — the seed's network, every rule against every witness (sets everything up)
# make test   — the property-test suite under the `ci` Hypothesis profile (sets everything up)
# make bench  — per-example cost of each witness, the catch rate of injected bugs, the
#               784-256-10 training step, and make test's wall time, peak memory and verified
#               examples (not part of make test)
# make fuzz   — HypoFuzz on every core over the property tests, for FUZZ_SECONDS
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HYPOTHESIS_PROFILE ?= ci
PYTEST_ARGS ?= -n auto  # pytest-xdist: one worker per core
FUZZ_SECONDS ?= 600

.PHONY: report test lint bench fuzz clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

report: $(STAMP)
	$(BIN)/bpcheck $(ARGS)

test: $(STAMP)
	HYPOTHESIS_PROFILE=$(HYPOTHESIS_PROFILE) $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/witnesses.py
	$(BIN)/python bench/sensitivity.py
	$(BIN)/python bench/training_step.py
	$(BIN)/python bench/suite.py

# HypoFuzz runs until stopped: `timeout` stops it with SIGINT after FUZZ_SECONDS (exit 124 is
# that planned stop). Failures it finds go to the example database (BPCHECK_EXAMPLE_DB to share
# them), so the next `make test` or fuzz run replays them first.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=dev timeout --signal=INT $(FUZZ_SECONDS) \
	  $(BIN)/hypothesis fuzz --no-dashboard -- tests/ -p no:xdist; \
	  status=$$?; [ $$status -eq 124 ] || [ $$status -eq 0 ] || exit $$status

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .hypothesis .pytest_cache .ruff_cache
