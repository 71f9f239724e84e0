# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# torch is installed first and pinned: on a CPU-only machine pip takes the local CPU wheel, elsewhere the
# same line gets the CUDA build. Everything else comes from pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test benchmark clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/benchmark_engine.py --quick

test: $(STAMP)
	$(PY) -m pytest

benchmark: $(STAMP)
	$(PY) -m pip install --quiet -e ".[test,benchmark]"
	$(PY) scripts/benchmark_engine.py

clean:
	rm -rf $(VENV) .pytest_cache
