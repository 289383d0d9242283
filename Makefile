# CityPulse: `make test` on a fresh machine creates .venv from requirements-dev.txt and runs the
# suite; `make demo` starts everything offline and leaves Airflow running; `make stop` stops it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PYTHONPATH := $(CURDIR)/include

.PHONY: venv test lint format demo stop bench backtest-chicago clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

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

bench: venv
	$(BIN)/python -m benchmarks

# Reload the real Chicago carjackings (../shared/realdata) through the chicago_crime DAG into a
# fresh database, backtest the hotspot model on them and rewrite README's table of the figures.
backtest-chicago: venv
	CITYPULSE_WRITE_README=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_backtest_chicago.py

clean: stop
	rm -rf .citypulse .airflow
