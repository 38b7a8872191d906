# Two commands do all set-up on a fresh machine:
#   make demo   create .venv, install NQP, run the platform on embedded defaults
#   make test   create/refresh .venv with the dev extras, lint, run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# BLAS threads: 1 (2 threads made sparse/dense linear algebra 3-10x slower on 2-core machines).
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: demo test lint format bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(VENV)/.installed-bench: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $@ $(VENV)/.installed-dev

demo: $(VENV)/.installed-dev
	$(VENV)/bin/nqp demo $(DEMO_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy src

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	$(PY) -m pytest

bench: $(VENV)/.installed-bench
	$(PY) bench/encoding.py
	$(PY) bench/neuromorphic.py
	$(PY) bench/quantum.py
	$(PY) bench/annealing.py
	$(PY) bench/patterns.py
	$(PY) bench/engine.py
	$(PY) bench/store.py
	$(PY) bench/load.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
