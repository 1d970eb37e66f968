# tenantq: `make run` runs the fleet with a demo batch; `make test` runs lint, types and the test suite.
# Every install comes from requirements.lock (all dependencies at the versions the tests passed with);
# `make lock` upgrades it on purpose. pyproject.toml keeps the ranges for library users.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
UV_VERSION := $(shell sed -n 's/^uv==\([^ ]*\).*/\1/p' $(LOCK))

.PHONY: run test lint fmt typecheck pytest bench lock clean

$(STAMP): $(LOCK) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv && $(BIN)/uv --version | grep -q ' $(UV_VERSION) ' \
		|| $(BIN)/python -m pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'
	$(BIN)/uv pip sync --quiet --python $(BIN)/python --require-hashes $(LOCK)
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

# Resolve every dependency anew at its newest allowed version; run `make test` before committing the lock.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --universal --generate-hashes \
		--upgrade --quiet -o $(LOCK)

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
