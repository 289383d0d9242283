# CityPulse: `make test` on a fresh machine creates .venv from requirements-dev.txt and runs the
# suite; `make demo` starts everything offline and leaves Airflow running; `make stop` stops it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin

.PHONY: venv browser test lint format demo stop bench backtest-chicago clean

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

venv: $(VENV)/.installed

# The benchmark's own environment for dlt (the `stream` figure), never the product's.
BENCH_DLT := .venv-bench-dlt
$(BENCH_DLT)/.installed: benchmarks/requirements-dlt.txt
	$(PYTHON) -m venv $(BENCH_DLT)
	$(BENCH_DLT)/bin/python -m pip install --quiet -r benchmarks/requirements-dlt.txt
	touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Debian's Chromium for the UI tests (tests/test_ui.py drives it with Playwright). Installed
# where apt-get runs as root; elsewhere those tests skip, saying why.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the UI tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
			|| (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null) \
			|| echo "could not install chromium: the browser tests will skip"; \
	else \
		echo "no Chromium at $(CHROMIUM) and no root apt-get: the browser tests will skip"; \
	fi

# pytest-xdist: TEST_WORKERS processes, each running whole files (module fixtures run once),
# the longest files first (tests/conftest.py); TEST_WORKERS=0 runs in this one process.
TEST_WORKERS ?= 2
test: venv browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

demo: venv
	$(BIN)/citypulse demo start

stop: venv
	$(BIN)/citypulse demo stop

# CITYPULSE_BENCH_SIZES=200000,2000000 make bench: the `stream` figure at 2 million too.
bench: venv $(BENCH_DLT)/.installed
	$(BIN)/python -m benchmarks

# Reload the real Chicago carjackings (../shared/realdata) through the chicago_crime DAG into a
# fresh database, backtest the hotspot model on them and rewrite README's table of the figures.
backtest-chicago: venv
	CITYPULSE_WRITE_README=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_backtest_chicago.py

clean: stop
	rm -rf .citypulse .airflow
