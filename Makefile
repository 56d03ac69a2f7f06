PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test demo lint typecheck bench vectors clean fuzz-api

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
	$(BIN)/ruff check bridge tests bench schemas examples
	$(BIN)/lint-imports --no-logo

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy --strict bridge

# The tests run side by side (pytest-xdist), whole files to a worker (a file's daemons and
# module fixtures are started once). Most of their time is spent waiting on daemons, disks and
# backoff windows, so more workers than cores pay. PYTEST_WORKERS=0 runs them in one process,
# as plain `pytest` does. No test asserts on how long anything took (speed is bench/'s).
PYTEST_WORKERS ?= 4

test: $(VENV)/.installed-test lint typecheck
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

demo: $(VENV)/.installed
	$(BIN)/bridge demo

bench: $(VENV)/.installed
	$(BIN)/python bench/core.py

# Schemathesis against the local API of a real daemon, in its own venv (.venv-fuzz), so that
# `make test` neither needs nor loads it. Bounded: FUZZ_EXAMPLES cases per operation, and the
# run is stopped after FUZZ_TIMEOUT seconds whatever it has left (about 6 minutes with 50 here).
FUZZ_VENV := .venv-fuzz
FUZZ_EXAMPLES ?= 50
FUZZ_TIMEOUT ?= 900

$(FUZZ_VENV)/.installed: pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) (Python 3.11)"; exit 1; }
	test -x $(FUZZ_VENV)/bin/python || $(PY) -m venv $(FUZZ_VENV)
	$(FUZZ_VENV)/bin/pip install --quiet -e '.[fuzz]'
	touch $@

fuzz-api: $(FUZZ_VENV)/.installed
	$(FUZZ_VENV)/bin/python tests/fuzz_api.py --max-examples $(FUZZ_EXAMPLES) --timeout $(FUZZ_TIMEOUT)

vectors: $(VENV)/.installed
	$(BIN)/python schemas/vectors/generate.py

clean:
	rm -rf $(VENV) $(FUZZ_VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .schemathesis
