# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# torch is installed first and pinned: on a CPU-only machine pip takes the local CPU wheel, elsewhere the
# same line gets the CUDA build. Everything else comes from pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The Slicer module's logic is tested against Slicer's own MRML libraries (the slicer-core wheel, Python 3.12
# only) in a second environment; tests/slicer/test_mrml.py fails with a clear message when it is missing.
PYTHON312 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3.12))
SLICER_VENV ?= .venv-slicer
SLICER_STAMP := $(SLICER_VENV)/.installed

.PHONY: demo test benchmark clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# The main job: the real MNI T1 (from nilearn, no download) through a shipped bundle, 16 samples, five
# NIfTI files in outputs/ (replaced on every run of the demo).
demo: $(STAMP)
	test -f example_data/mni_t1.nii.gz || $(VENV)/bin/revnets example example_data
	$(VENV)/bin/revnets predict example_data/mni_t1.nii.gz --bundle bundles/invres_brain_tissue \
		--output outputs --samples 16 --overwrite

$(SLICER_STAMP):
	@if [ -z "$(PYTHON312)" ]; then \
		echo "No Python 3.12 found (set PYTHON312=...): the Slicer MRML test will fail."; \
	else \
		$(PYTHON312) -m venv $(SLICER_VENV) && \
		$(SLICER_VENV)/bin/python -m pip install --quiet slicer-core==5.13.31053.0 numpy nibabel pytest && \
		touch $@; \
	fi

# Lint and type-check first (seconds), then the suite; `$(PY) -m pytest -m "not slow"` is the quick loop.
# PYTHONUTF8: the suite reads UTF-8 files and child processes' output whatever the machine's locale is.
test: $(STAMP) $(SLICER_STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	PYTHONUTF8=1 $(PY) -m pytest

benchmark: $(STAMP)
	$(PY) -m pip install --quiet torch==2.13.0 -e ".[test,benchmark]"  # torch pinned in the same resolve
	$(PY) scripts/benchmark_engine.py

clean:
	rm -rf $(VENV) $(SLICER_VENV) .pytest_cache
