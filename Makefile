# cancelsync developer targets. `make install` needs only python3 (>= 3.11) and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: install test lint fmt demo bench soak clean

install: $(BIN)/cancelsync chromium

$(BIN)/cancelsync: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# The order center's browser test (tests/web/test_browser.py) drives Debian's Chromium:
# installed when missing and running as root (CI); anyone else is told what to install.
.PHONY: chromium
chromium:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq chromium chromium-driver </dev/null; \
	else \
		echo "note: the browser test needs Chromium: sudo apt-get install chromium" \
			"chromium-driver (skipped without it, except in CI)"; \
	fi

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

# Issue 12's figures (calls per event, idle calls, CPU, throughput at 100 ms latency, peak
# RSS, no-op run) against the simulators in a child process: a table beside each goal and
# build/bench.json. About 6 minutes on 2 cores; not part of `make test`. ARGS=--quick
# shrinks every size.
bench: install
	mkdir -p build
	$(BIN)/python benchmarks/run.py --json build/bench.json $(ARGS)

# Chaos soak: the real worker (child processes, SIGKILLed) against faulty simulators, then
# the exactly-once invariants. About 6 minutes; SEED=N reproduces a run, figures go to
# build/soak.json and the worker's logs to build/soak/.
SEED ?= 1
soak: install
	rm -rf build/soak && mkdir -p build
	$(BIN)/python -m cancelsync.sandbox.soak --orders 1000 --kills 12 --seed $(SEED) \
		--workdir build/soak --json build/soak.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
