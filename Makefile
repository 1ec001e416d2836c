# Every target sets up what it needs; running one twice does nothing new the second time.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup lab demo test lint test-fast test-gpu test-browser test-notebooks pictures assets browser-deps clean

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
	$(BIN)/jupyter lab --LabApp.app_settings_dir=$(CURDIR)/binder/lab-settings notebooks/

demo: setup
	$(BIN)/workbench demo

# Chromium for the browser tests comes from Debian, never from `playwright install`.
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)
browser-deps:
	@test -x /usr/bin/chromium || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver)

# ruff (lint and format) and mypy (strict on workbench/) fail the build on a new violation.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The tutorials run too, short (WORKBENCH_QUICK=1): nbval executes every cell and fails on an error.
# NUMBA_DISABLE_JIT: shap's numba kernels stay plain Python in every process and kernel of the run (the
# same code, uncompiled): compiling them costs ~12 s per process, more than they then save on short texts.
# Two worker processes (pytest-xdist), one torch thread each: much of the suite waits on a kernel, a browser or
# an import, which now overlaps another test's work. `--dist loadfile` keeps each file (a tutorial's cells, a
# browser module's server) in one worker.
TEST_WORKERS ?= 2
test: setup browser-deps lint
	WORKBENCH_QUICK=1 NUMBA_DISABLE_JIT=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests notebooks -n $(TEST_WORKERS) --dist loadfile --durations=25 --nbval-lax --nbval-sanitize-with notebooks/nbval_sanitize.cfg

test-browser: setup browser-deps
	$(BIN)/python -m pytest tests/browser -q

# The README's pictures (docs/images/*.png) from the tutorials run in FULL mode (trained models): each cell
# tagged "picture:<name>" is screenshotted in JupyterLab + headless Chromium, offline. Tens of minutes on two
# cores; `python tests/browser/pictures.py --only NAME` retakes one. tuned_lens.png comes from its benchmark.
pictures: setup browser-deps
	$(BIN)/python tests/browser/pictures.py --out docs/images
	$(BIN)/python tests/benchmarks/tuned_lens.py --pictures docs/images

test-fast: setup
	$(BIN)/python -m pytest tests -m "not assets and not browser"

# Where a CUDA device is present: the Trainer in bf16 and fp16, resume, Stop, NCCL with two devices,
# explain calls equal to the CPU's, and the MFU benchmark (GPT-2-small size). Elsewhere: one line saying so.
test-gpu: setup
	@if $(BIN)/python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then \
		$(BIN)/python -m pytest tests/gpu -q -rs && $(BIN)/python tests/benchmarks/gpu_mfu.py; \
	else echo "test-gpu: no CUDA device on this machine; nothing to run (the GPU checks run where one is lent)"; fi

test-notebooks: setup
	WORKBENCH_QUICK=1 $(BIN)/python -m pytest notebooks --nbval-lax --nbval-sanitize-with notebooks/nbval_sanitize.cfg

clean:
	rm -rf $(VENV) .pytest_cache
