# cancelsync developer targets. `make install` needs only python3 (>= 3.11) and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: install test lint fmt demo bench clean

install: $(BIN)/cancelsync

$(BIN)/cancelsync: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check cancelsync tests
	$(BIN)/ruff format --check cancelsync tests
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff format cancelsync tests
	$(BIN)/ruff check --fix cancelsync tests

demo: install
	$(BIN)/python -m cancelsync.sandbox.demo

bench: install
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
