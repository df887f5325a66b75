# Two commands for a fresh machine with Python 3.11 and pip:
#   make demo   install into .venv and run the retraining pipeline on the built-in demo cohort
#   make test   install into .venv and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: install demo test lint clean-outputs

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/radflow demo

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check radflow tasks flows tests benchmarks
	$(BIN)/mypy radflow tasks flows

clean-outputs:
	rm -rf data/ingest data/clean data/split models reports checkpoints
