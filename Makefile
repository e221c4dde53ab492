# Yima — two commands on a fresh machine: `make demo` and `make test`.
# Everything is installed into .venv by the project itself.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint typecheck unit bench clean browser-deps

include contracts.mk

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/yima demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest -q -n 2 -p no:cacheprovider

# The chain tests need anvil and solc from npm (contracts/node_modules); the artifact check
# fails when the committed contract artifact is not what the pinned compiler builds.
test: chain-deps contracts-check browser-deps lint typecheck unit

BROWSER_STAMP := tests/browser/node_modules/.yima-installed

browser-deps: $(BROWSER_STAMP)

# playwright-core drives the system Chromium; it never downloads a browser of its own.
$(BROWSER_STAMP): tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

bench: setup
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
