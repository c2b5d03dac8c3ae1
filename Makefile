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
# The web dashboard (frontend/): `npm ci` when the lock file changes, `npm run build` when a source does.
NPM       ?= npm
UI        := frontend
UI_DEPS   := $(UI)/node_modules/.ci-stamp
UI_BUILD  := $(UI)/dist/.build-stamp
UI_SOURCES := $(shell find $(UI)/src -type f 2>/dev/null) $(UI)/index.html $(UI)/vite.config.ts $(UI)/tsconfig.json

.PHONY: install up test test-unit test-ui lint lint-imports bench clean

install: $(STAMP) $(UI_BUILD)

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

$(UI_DEPS): $(UI)/package.json $(UI)/package-lock.json
	@command -v $(NPM) >/dev/null 2>&1 || { echo "Node.js 20+ and npm are required to build the dashboard (frontend/)"; exit 1; }
	cd $(UI) && $(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

$(UI_BUILD): $(UI_DEPS) $(UI_SOURCES)
	cd $(UI) && $(NPM) run build --silent
	@touch $@

up: install
	$(VENV)/bin/studio up

test: install lint lint-imports test-ui
	$(PY) -m pytest tests -q -p no:cacheprovider

# Component tests (vitest + Testing Library); the browser end-to-end test is tests/e2e (pytest, above).
test-ui: $(UI_DEPS)
	cd $(UI) && $(NPM) test --silent

# ruff: pyflakes, import order and bugbear ([tool.ruff] in pyproject.toml), zero findings.
lint: install
	$(VENV)/bin/ruff check .

lint-imports: install
	$(VENV)/bin/lint-imports --no-cache

bench: install
	$(PY) bench/train_throughput.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache $(UI)/node_modules $(UI)/dist
