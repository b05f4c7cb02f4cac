# The verbs people and CI use. Everything installs into .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test lint typecheck pytest demo emulator bench reliability clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

# mixpeek-emulator: the local Mixpeek API (FastAPI + uvicorn) on 127.0.0.1.
emulator: $(STAMP)
	$(BIN)/mixpeek-emulator --host 127.0.0.1 --port 8787 --api-key demo-key

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# Rewrites docs/reliability.md from a run of the fault matrix.
reliability: $(STAMP)
	MIXPEEK_WRITE_DOCS=1 $(BIN)/pytest tests/reliability -q

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info .pulumi
