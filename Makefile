# tenantq: `make run` runs the fleet with a demo batch; `make test` runs lint, types and the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint fmt typecheck pytest bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tenantq up $(ARGS)

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/tenantq bench pipeline
	$(BIN)/tenantq bench dispatch
	$(BIN)/tenantq bench fairness
	$(BIN)/tenantq bench erp

clean:
	rm -rf $(VENV) .tenantq .pytest_cache .mypy_cache .ruff_cache
