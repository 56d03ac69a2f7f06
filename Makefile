PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test demo lint typecheck bench vectors clean

$(BIN)/python:
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) (Python 3.11)"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

lint: $(VENV)/.installed-test
	$(BIN)/ruff check bridge tests bench schemas

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy --strict bridge

test: $(VENV)/.installed-test lint typecheck
	$(BIN)/pytest

demo: $(VENV)/.installed
	$(BIN)/bridge demo

bench: $(VENV)/.installed
	$(BIN)/python bench/core.py

vectors: $(VENV)/.installed
	$(BIN)/python schemas/vectors/generate.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
