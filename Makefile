# okr: `make run` serves the demo on SQLite; `make test` runs the whole suite.
# Needs only Python 3.11+ and make. Everything else is installed into .venv.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.okr-installed
# Tests run in parallel, one worker per core (each with its own SQLite file and PostgreSQL database).
TEST_WORKERS ?= auto

.PHONY: run test lint format bench clean help

help:
	@echo "make run    - set up, migrate var/okr.db, load the demo organisation, serve http://127.0.0.1:8000"
	@echo "make test   - set up and run every test (browser tests need Chromium; PostgreSQL ones OKR_TEST_POSTGRES_URL)"
	@echo "make lint   - ruff and mypy"
	@echo "make clean  - remove .venv and var/"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "okr needs Python 3.11 or newer; set PYTHON=python3.12 for example")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/okr up

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check src tests migrations bench
	$(BIN)/ruff check src tests migrations bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests migrations bench
	$(BIN)/ruff check --fix src tests migrations bench

clean:
	rm -rf $(VENV) var
