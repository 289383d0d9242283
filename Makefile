# CityPulse: `make test` on a fresh machine creates .venv from requirements-dev.txt and runs the
# suite; `make demo` starts everything offline and leaves Airflow running; `make stop` stops it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PYTHONPATH := $(CURDIR)/include

.PHONY: venv test lint format demo stop bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
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

test: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

demo: venv
	$(BIN)/python -m citypulse.demo start

stop: venv
	$(BIN)/python -m citypulse.demo stop

# CITYPULSE_BENCH_SIZES=200000,2000000 make bench: the `stream` figure at 2 million too.
bench: venv $(BENCH_DLT)/.installed
	$(BIN)/python -m benchmarks

clean: stop
	rm -rf .citypulse .airflow
