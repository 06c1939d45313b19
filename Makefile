# The two commands of the README: `make run` (the service on its embedded defaults) and
# `make test` (lint, type check and the whole test suite against a real local broker).
# Everything else is a step they depend on.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test lint install services bench clean-state

$(INSTALLED): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "newswire needs $(PYTHON) on PATH (or run: make PYTHON=python3 ...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(INSTALLED)

run: $(INSTALLED)
	$(BIN)/newswire up

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/mypy

services:
	bash .ci/install-services

test: lint services
	$(BIN)/python -m pytest

bench: $(INSTALLED)
	$(BIN)/python -m bench.pipeline_throughput

clean-state:
	$(BIN)/newswire broker stop || true
	rm -rf .newswire/broker .newswire/output .newswire/state
