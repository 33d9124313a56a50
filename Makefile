# make report — the seed's network, every rule against every witness (sets everything up)
# make test   — the property-test suite under the `ci` Hypothesis profile (sets everything up)
# make bench  — milliseconds per example for the rule and each witness (not part of make test)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HYPOTHESIS_PROFILE ?= ci
PYTEST_ARGS ?= -n auto  # pytest-xdist: one worker per core

.PHONY: report test lint bench clean

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

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .hypothesis .pytest_cache .ruff_cache
