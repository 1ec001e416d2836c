# Every target sets up what it needs; running one twice does nothing new the second time.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup lab demo test test-fast test-browser test-notebooks assets browser-deps clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first: a plain `torch` requirement would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

assets: setup
	$(BIN)/workbench assets fetch --all

lab: setup
	$(BIN)/jupyter lab notebooks/

demo: setup
	$(BIN)/workbench demo

# Chromium for the browser tests comes from Debian, never from `playwright install`.
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)
browser-deps:
	@test -x /usr/bin/chromium || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver)

# The tutorials run too, short (WORKBENCH_QUICK=1): nbval executes every cell and fails on an error.
test: setup browser-deps
	WORKBENCH_QUICK=1 $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-sanitize-with notebooks/nbval_sanitize.cfg

test-browser: setup browser-deps
	$(BIN)/python -m pytest tests/browser -q

test-fast: setup
	$(BIN)/python -m pytest tests -m "not assets and not browser"

test-notebooks: setup
	WORKBENCH_QUICK=1 $(BIN)/python -m pytest notebooks --nbval-lax --nbval-sanitize-with notebooks/nbval_sanitize.cfg

clean:
	rm -rf $(VENV) .pytest_cache
