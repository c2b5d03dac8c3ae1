# Fine-tuning Studio — `make up` runs the studio, `make test` runs every test.
# Both install what is missing first; `make install` is idempotent.

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
TORCH_VERSION ?= 2.13.0
# Where no local CPU wheel is configured (pip's find-links), point TORCH_INDEX at a CPU-only index.
TORCH_INDEX ?=
STAMP  := $(VENV)/.installed

.PHONY: install up test test-unit lint-imports bench clean

install: $(STAMP)

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch first (the CPU wheel here), so the ranges in pyproject are already met and pip never pulls CUDA.
$(STAMP): pyproject.toml $(VENV)/bin/python
	@$(PY) -c "import torch" 2>/dev/null || $(PIP) install --quiet "torch==$(TORCH_VERSION)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) install --quiet -e ".[worker,dev]"
	@$(PY) scripts/check_no_cuda.py
	@touch $(STAMP)

up: install
	$(VENV)/bin/studio up

test: install lint-imports
	$(PY) -m pytest tests -q -p no:cacheprovider

lint-imports: install
	$(VENV)/bin/lint-imports --no-cache

bench: install
	$(PY) bench/train_throughput.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
