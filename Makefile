# Every target does its own set-up on a fresh machine: a venv with pip, torch first (the CPU
# wheel; override with `make TORCH_VERSION=...`), then lossatlas with the extra the target
# needs: `demo` the lab extra only, `test` the test extra, `lint`/`format`/`install` dev.
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
BIN := $(VENV)/bin
PYTEST_ARGS ?=

DOCS_STAMP := $(VENV)/.lossatlas-docs-installed
KATEX := docs/node_modules/katex/package.json
SPHINX_JOBS ?= 2

.PHONY: install test test-fast demo lint format readme bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# $(VENV)/.lossatlas-<extra>: torch, then lossatlas with that extra (one stamp per extra).
$(VENV)/.lossatlas-%: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q "torch==$(TORCH_VERSION)"
	$(BIN)/pip install --disable-pip-version-check -q -e ".[$*]"
	touch $@

install: $(VENV)/.lossatlas-dev

## The full test suite (unit, contract over the whole catalog, doctests, slow).
test: $(VENV)/.lossatlas-test
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

## Everything but the tests marked slow.
test-fast: $(VENV)/.lossatlas-test
	$(BIN)/python -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

## The main job: pick the loss for a data set (needs only torch and the lab extra).
demo: $(VENV)/.lossatlas-lab
	$(BIN)/lossatlas compare

lint: $(VENV)/.lossatlas-dev
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy

format: $(VENV)/.lossatlas-dev
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

## Rewrite the README's index of losses from the catalog.
readme: $(VENV)/.lossatlas-lab
	$(BIN)/python scripts/update_readme.py

bench: $(VENV)/.lossatlas-lab
	$(BIN)/lossatlas bench

$(DOCS_STAMP): pyproject.toml $(VENV)/.lossatlas-dev
	$(BIN)/pip install --disable-pip-version-check -q -e ".[dev,docs]"
	touch $(DOCS_STAMP)

# KaTeX pre-renders the formulas at build time (no CDN, no JavaScript in the pages)
$(KATEX): docs/package.json docs/package-lock.json
	npm ci --prefix docs --no-audit --no-fund --loglevel=error
	touch $(KATEX)

## The documentation site, from the catalog, into docs/_build/html (warnings are errors); then
## the doctests of every page.
docs: $(DOCS_STAMP) $(KATEX)
	MPLBACKEND=Agg $(BIN)/sphinx-build -b html -W --keep-going -j $(SPHINX_JOBS) -q docs docs/_build/html
	MPLBACKEND=Agg $(BIN)/sphinx-build -b doctest -W --keep-going -q docs docs/_build/doctest
	@echo "docs: file://$(CURDIR)/docs/_build/html/index.html"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis lossatlas-report
	rm -rf docs/_build docs/node_modules docs/losses docs/tasks docs/_plots
