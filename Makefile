# Two commands: `make run` starts Orchestry on the demo app; `make test` runs every check.
# Both bootstrap first (scripts/bootstrap.sh), which takes seconds once everything is in place.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
# The slowest tests are printed after every run, so a suite that grows slow shows where.
PYTEST_ARGS ?= --durations=15
export ORCHESTRY_TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: help bootstrap run test lint format demo-image bench clean distclean

help:
	@echo "make run         bootstrap, then open the console with examples/web.yml applied"
	@echo "make test        bootstrap (with PostgreSQL), ruff, layer contracts, then the whole pytest suite"
	@echo "make lint        ruff check + format check"
	@echo "make format      ruff format + safe fixes"
	@echo "make demo-image  rebuild orchestry/demo:latest"
	@echo "make bench       run every bench/*.py"
	@echo "make clean       remove caches and build leftovers (distclean: also .venv)"

bootstrap:
	bash scripts/bootstrap.sh

run: bootstrap
	$(BIN)/orchestry --apply examples/web.yml

# pytest exits 5 when no test ran, so an empty or mis-collected suite fails too.
test:
	bash scripts/bootstrap.sh --with-postgres
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

demo-image:
	bash scripts/build_demo_image.sh

bench: bootstrap
	@shopt -s nullglob; benches=(bench/*.py); \
	if (( $${#benches[@]} == 0 )); then echo "no benchmarks in bench/"; exit 1; fi; \
	for bench in "$${benches[@]}"; do echo "== $$bench"; $(BIN)/python "$$bench"; done

clean:
	rm -rf .pytest_cache .ruff_cache .hypothesis build dist snapshot_report.html
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info
