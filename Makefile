# One entry point for people and CI. `make test` sets everything up on a fresh machine.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= demo

.PHONY: install test lint demo clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check asf_jax scripts tests configs
	$(PY) -m pytest -n 2 --durations=15 tests

lint: $(STAMP)
	$(PY) -m ruff check asf_jax scripts tests configs

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
