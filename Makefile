# Developer entry points: make demo | test | lint | clean.
# Everything runs from a virtual environment in $(VENV), created and filled on first use.

PYTHON ?= python3
VENV ?= .venv
PYTEST_ARGS ?=
# Worker processes for `make test` (pytest-xdist); TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 2

BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
# The dashboard's browser packages (Preact, htm, uPlot), installed by npm from the lock file
# and served as they are: there is no build step.
WEB := gateway/web
WEB_PACKAGES := $(WEB)/node_modules/.package-lock.json

.DEFAULT_GOAL := help
.PHONY: help demo test lint clean distclean install install-test

help:
	@echo "make demo    run the gateway with an embedded broker, SQLite and simulated homes"
	@echo "make test    run the test suite in TEST_WORKERS=2 processes (PYTEST_ARGS=... for pytest)"
	@echo "make lint    ruff check, ruff format --check, mypy"
	@echo "make clean   remove caches and build leftovers (distclean: also $(VENV))"

demo: $(VENV)/.installed
	$(BIN)/iot-gateway demo

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamp files make a second run quick: pip runs again only when pyproject.toml changes.
# The venv is an order-only prerequisite, so its own changing timestamp triggers nothing.
$(VENV)/.installed: pyproject.toml $(WEB_PACKAGES) | $(BIN)/python
	$(PIP) install -e .
	@touch $@

# The test extras include everything the demo needs, so this stamps both.
$(VENV)/.installed-test: pyproject.toml $(WEB_PACKAGES) | $(BIN)/python
	$(PIP) install -e '.[test]'
	@touch $@ $(VENV)/.installed

$(WEB_PACKAGES): $(WEB)/package-lock.json
	@command -v npm >/dev/null || { echo "the dashboard's packages need Node.js and npm (Debian: apt install npm)" >&2; exit 1; }
	cd $(WEB) && npm ci --no-audit --no-fund
	@touch $@

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
	rm -f $(VENV)/.installed $(VENV)/.installed-test
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(WEB)/node_modules
