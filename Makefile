# make report — the seed's network, every rule against every witness (sets everything up)
# make test   — the property-test suite under the `ci` Hypothesis profile (sets everything up)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HYPOTHESIS_PROFILE ?= ci
PYTEST_ARGS ?=

.PHONY: report test lint clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

report: $(STAMP)
	$(BIN)/bpcheck $(ARGS)

test: $(STAMP)
	HYPOTHESIS_PROFILE=$(HYPOTHESIS_PROFILE) $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .hypothesis .pytest_cache .ruff_cache
