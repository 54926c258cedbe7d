"""Generated Verilog: rtl/ is reproducible, lint-clean, and `dqt-hw rtl` validates first."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dqt_hw.cli import main
from dqt_hw.design import Design
from dqt_hw.design.reference import REFERENCE_DESIGNS
from dqt_hw.hw.cli import design_files
from dqt_hw.hw.lint import NEVER_WAIVED, WAIVERS, lint
from dqt_hw.hw.verilog import generate, render
from dqt_hw.spec import CONTRACT_VERSION

RTL = Path(__file__).resolve().parent.parent / "rtl"


@pytest.mark.parametrize("config", REFERENCE_DESIGNS, ids=lambda c: c.name)
def test_checked_in_rtl_equals_fresh_generation(config):
    """Each reference configuration's files as `make rtl` writes them (Verilog, sidecar,
    IP-XACT component, an AXI shell's register map texts) equal rtl/'s, byte for byte
    (one test per design, so that the generations share the test workers)."""
    files = design_files([config], ipxact=True)
    assert files.pop("verilator.vlt") == WAIVERS
    missing = [name for name in files if not (RTL / name).is_file()]
    assert not missing, f"rtl/ lacks {missing}, run `make rtl`"
    stale = [name for name, text in files.items() if (RTL / name).read_text() != text]
    assert not stale, f"rtl/ is stale, run `make rtl`: {stale}"


def test_rtl_holds_only_generated_files():
    """Every file in rtl/ is the waivers or belongs to a reference configuration (its
    <name>.v / .json / .xml, and an AXI shell's <name>_regs.md / _regs.h / .rdl)."""
    known = {"verilator.vlt"}
    for c in REFERENCE_DESIGNS:
        known |= {f"{c.name}{ext}" for ext in (".v", ".json", ".xml")}
        if c.component == "axi":
            known |= {f"{c.name}{ext}" for ext in ("_regs.md", "_regs.h", ".rdl")}
    on_disk = {p.name for p in RTL.iterdir() if p.is_file()}
    assert on_disk - known == set(), "rtl/ holds files that `make rtl` does not write"


def test_generation_is_deterministic():
    c = REFERENCE_DESIGNS[2]
    assert render(c) == render(c)


@pytest.mark.parametrize("config", REFERENCE_DESIGNS, ids=lambda c: c.name)
def test_reference_rtl_lints_clean(config):
    r = lint(RTL / f"{config.name}.v", RTL / "verilator.vlt")
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize(
    "config",
    [
        Design(component="view", name="v_signed_floor", n=6, view_rounding="floor", signed=True),
        Design(component="view", name="v_sparse", n=16, view_rounding="half_up", widths=(2, 4, 8, 16)),
        Design(component="pe", name="pe_sat_signed", n=4, acc_width=8, overflow="saturate",
                                             view_rounding="half_up", signed=True),
        Design(component="scalable_pe", name="spe_signed", n=8, acc_width=16, overflow="saturate",
                                                   signed=True, max_pack=2),
        Design(component="requant", name="rq_small", n=4, acc_width=10, sum_width=8, kbits=6,
                                             ebits=2, sbits=3, widths=(2, 4)),
        Design(component="tile", name="tile_2x3_signed", rows=2, cols=3, n=4, acc_width=8,
                                                 overflow="saturate", signed=True,
                                                 view_rounding="half_up", depth_bits=3,
                                                 kbits=8, ebits=2, sbits=4),
        Design(component="tile", name="tile_1x1", rows=1, cols=1, n=2, acc_width=5, depth_bits=1,
                                          kbits=2, ebits=1, sbits=1),
        Design(component="tile", name="tile_packed_signed", rows=2, cols=2, n=8, acc_width=16,
                                                    overflow="saturate", signed=True,
                                                    max_pack=2, depth_bits=4, kbits=8,
                                                    ebits=2, sbits=4),
        Design(component="tile", name="tile_rq1", rows=3, cols=4, n=4, acc_width=10,
               depth_bits=3, kbits=6, ebits=2, sbits=3, rq_lanes=1),
        Design(component="tile", name="tile_rq3_packed", rows=2, cols=6, n=8, acc_width=16,
               signed=True, max_pack=4, depth_bits=4, kbits=8, ebits=2, sbits=4,
               rq_lanes=3),
        Design(component="array", name="array_packed4", rows=2, cols=3, n=8, acc_width=9,
                                                widths=(2, 4), max_pack=4),
        Design(component="rescale", name="rescale_even", n=4, rounding="half_even", signed=True,
                                                 mult_bits=6, sbits=3),
        Design(component="axi", name="axi_wide", rows=3, cols=5, n=6, acc_width=16,
               signed=True, max_pack=2, kbits=40, ebits=7, sbits=8, depth_bits=20,
               queue_depth=16),
        Design(component="axi", name="axi_1x1", rows=1, cols=1, n=2, acc_width=5,
               depth_bits=1, kbits=2, ebits=1, sbits=1, queue_depth=2),
    ],
    ids=lambda c: c.name,
)
def test_other_configurations_lint_clean(config, tmp_path):
    text, _ = generate(config)
    (tmp_path / f"{config.name}.v").write_text(text)
    (tmp_path / "verilator.vlt").write_text(WAIVERS)
    r = lint(tmp_path / f"{config.name}.v", tmp_path / "verilator.vlt")
    assert r.returncode == 0, r.stdout + r.stderr


def test_waivers_are_commented_and_never_hide_bugs():
    lines = WAIVERS.splitlines()
    assert lines[0] == "`verilator_config"
    rules = []
    for i, line in enumerate(lines):
        if line.startswith("lint_off"):
            m = re.fullmatch(r"lint_off -rule ([A-Z]+)", line)
            assert m, f"a waiver must name one rule, for every file: {line!r}"
            rules.append(m.group(1))
            assert lines[i - 1].startswith("//"), f"{line!r} has no reason above it"
    assert rules and not set(rules) & set(NEVER_WAIVED)
    assert "-Wno" not in WAIVERS


def test_lint_catches_a_truncation(tmp_path):
    """The waivers leave WIDTHTRUNC an error (the lint really runs)."""
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input [7:0] a, output [3:0] y);\n  assign y = a;\nendmodule\n")
    r = lint(bad, RTL / "verilator.vlt")
    assert r.returncode != 0 and "WIDTHTRUNC" in r.stdout + r.stderr


def _verilog_ports(text: str, module: str) -> dict[str, tuple[str, int]]:
    body = text.split(f"module {module}(", 1)[1].split("endmodule", 1)[0]
    ports = {}
    for m in re.finditer(r"^\s*(input|output)\s+(?:signed\s+)?(?:\[(\d+):0\]\s+)?(\S+);",
                         body, re.M):
        ports[m.group(3)] = (m.group(1), int(m.group(2) or 0) + 1)
    return ports


@pytest.mark.parametrize("config", REFERENCE_DESIGNS, ids=lambda c: c.name)
def test_sidecar_describes_the_verilog(config):
    text = (RTL / f"{config.name}.v").read_text()
    side = json.loads((RTL / f"{config.name}.json").read_text())
    assert side["contract_version"] == CONTRACT_VERSION
    assert side["module"] == config.name and side["component"] == config.component
    assert side["parameters"] == config.parameters()
    assert Design.from_sidecar(side) == config
    want = {p["name"]: (p["direction"], p["width"]) for p in side["ports"]}
    assert _verilog_ports(text, config.name) == want
    for p in side["ports"]:
        if "fields" in p:  # the fields tile the port exactly
            spans = sorted((f["offset"], f["width"]) for f in p["fields"])
            pos = 0
            for off, w in spans:
                assert off == pos
                pos += w
            assert pos == p["width"]


# ---------------------------------------------------------------- the `dqt-hw rtl` command


def test_cli_flags(tmp_path, capsys):
    rc = main(["rtl", "--component", "tile", "--name", "t24", "--rows", "2", "--cols", "3",
               "--acc-width", "24", "--overflow", "saturate", "--widths", "2,4,8",
               "--signed", "-o", str(tmp_path)])
    assert rc == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t24.json", "t24.v", "verilator.vlt"]
    side = json.loads((tmp_path / "t24.json").read_text())
    assert side["parameters"]["acc_width"] == 24
    assert side["parameters"]["widths"] == [2, 4, 8]
    assert side["parameters"]["signed"] is True
    assert str(tmp_path / "t24.v") in capsys.readouterr().out


def test_cli_packed_tile_sidecar(tmp_path):
    """--max-pack 2 on a tile: two elements per act/wgt transfer, the pack factor and the
    cycles per element of every width pair in the sidecar; max_pack = 1 leaves it out."""
    assert main(["rtl", "--component", "tile", "--name", "tp", "--rows", "2", "--cols", "2",
                 "--max-pack", "2", "--widths", "2,4,8", "-o", str(tmp_path)]) == 0
    side = json.loads((tmp_path / "tp.json").read_text())
    assert side["parameters"]["max_pack"] == 2
    assert side["timing"]["pack_factor"] == {"2x2": 2, "2x4": 2, "2x8": 1, "4x2": 2, "4x4": 2,
                                             "4x8": 1, "8x2": 1, "8x4": 1, "8x8": 1}
    assert side["timing"]["cycles_per_element"]["4x4"] == 0.5
    act = next(p for p in side["ports"] if p["name"] == "act__payload")
    assert act["width"] == 2 * 2 * 8
    assert [f["name"] for f in act["fields"]] == ["[0][0]", "[0][1]", "[1][0]", "[1][1]"]
    plain = json.loads((RTL / "dqt_tile8x8_w32.json").read_text())
    assert "max_pack" not in plain["parameters"] and "pack_factor" not in plain["timing"]


def test_cli_toml_and_flag_override(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('component = "pe"\nname = "my_pe"\nn = 6\nacc_width = 14\n'
                   'overflow = "saturate"\n')
    out = tmp_path / "out"
    assert main(["rtl", str(cfg), "--acc-width", "20", "-o", str(out)]) == 0
    side = json.loads((out / "my_pe.json").read_text())
    assert side["parameters"]["n"] == 6 and side["parameters"]["acc_width"] == 20
    assert side["parameters"]["overflow"] == "saturate"


def test_cli_toml_many_configs(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[rtl]]\ncomponent = "view"\nname = "v4"\nn = 4\n\n'
                   '[[rtl]]\ncomponent = "rescale"\nname = "r4"\n[rtl.params]\nn = 4\n')
    out = tmp_path / "out"
    assert main(["rtl", str(cfg), "-o", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"v4.v", "v4.json", "r4.v", "r4.json",
                                              "verilator.vlt"}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--component", "tile", "--acc-width", "16"],
         "accumulator width W = 16 is narrower than one product: 8-bit x 8-bit unsigned "
         "codes reach 65025, which needs 17 bits"),
        (["--component", "tile", "--acc-width", "8", "--widths", "2,4"],
         "accumulator width W = 8 is narrower than one product: 4-bit x 4-bit unsigned "
         "codes reach 225, which needs 9 bits"),
        (["--component", "pe", "--overflow", "trap"],
         "overflow must be one of ('wrap', 'saturate') in hardware, not 'trap'"),
        (["--component", "view", "--rows", "4"],
         "parameter 'rows' is not one of the view parameters"),
        (["--component", "tile", "--name", "9bad"], "module name must be a Verilog identifier"),
        (["--component", "view", "--widths", "0,4"], "width 0 in widths (0, 4) is outside"),
        (["--reference", "x", "--rows", "2"], "--reference takes no design file"),
    ],
)
def test_cli_refuses_before_writing(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    extra = [] if "--reference" in argv else ["-o", str(out)]
    assert main(["rtl", *argv, *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_cli_many_configs_one_bad_writes_nothing(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[rtl]]\ncomponent = "view"\nname = "good"\n\n'
                   '[[rtl]]\ncomponent = "pe"\nname = "bad"\nacc_width = 3\n')
    out = tmp_path / "out"
    assert main(["rtl", str(cfg), "-o", str(out)]) == 2
    assert "accumulator width W = 3 is narrower than one product" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    "table, exc, match",
    [
        ({"component": "gpu"}, ValueError, r"^design: component must be one of"),
        ({"component": 3}, TypeError, r"^design: component must be a string, not 3$"),
        ([], TypeError, r"^design: a design must be a table, not \[\]$"),
        ({"acc_widht": 20}, ValueError,
         r"^design: unknown design key 'acc_widht' \(did you mean 'acc_width'\?\)"),
        ({"component": "view", "acc_width": 20}, ValueError,
         r"^design: parameter 'acc_width' is not one of the view parameters"),
        ({"widths": [2, 4], "acc_width": 8}, ValueError,
         r"^design: accumulator width W = 8 is narrower than one product"),
    ],
)
def test_design_table_validation(table, exc, match):
    with pytest.raises(exc, match=match):
        Design.from_mapping(table)


def test_identical_modules_merge_for_hierarchical_synthesis():
    """dqt-hw synth's hierarchical flow merges Amaranth's one-module-per-instance output:
    the 16 PEs of the 4x4 array are one module, the 4 + 4 edge views and side sums two."""
    from dqt_hw.cost.synth import merge_identical_modules

    text = (RTL / "dqt_array4x4.v").read_text()
    merged, count = merge_identical_modules(text)
    assert sorted(count.values()) == [1, 8, 8, 16]
    kept = set(re.findall(r"^module (\S+)", merged, re.M))
    assert len(kept) == len(count) == 4
    used = set(re.findall(r"^  (\\\S+)\s+\S+ \($", merged, re.M))
    assert used <= kept and len(used) == 3
    assert merged.count("pe_3_3 (") == 1  # every instance is still there
