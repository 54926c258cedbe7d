"""The representative cocotb-on-Verilator subset inside the main test suite (make test).

The same nodes as ``pytest sim -m quick`` (make sim): sim/matrix.py's QUICK list, each a
cocotb bench on a Verilated model built once per configuration under sim_build/. A failure
names the seed and the one command that reproduces it (with WAVES=1 for an FST).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sim import matrix, runner  # noqa: E402


@pytest.mark.parametrize("node", matrix.QUICK, ids=lambda n: n.id)
def test_sim_quick(node, request):
    result = runner.run(node.design(), f"sim.tb.{node.bench}", node=request.node.nodeid,
                        params=dict(node.params))
    assert result.summary.get("checks", 0) > 0, f"{node.id}: nothing was checked"


def test_dqt_hw_sim_runs_a_written_set_and_fails_on_a_flipped_code(tmp_path, capsys):
    """``dqt-hw golden write`` then ``dqt-hw sim`` on a small packed tile (max_pack = 2:
    the 4/4 case takes two elements per transfer, its odd K a half-full last one): every
    case passes both paths; then one expected code flipped (the case rewritten with consistent checksums,
    so only the value is wrong) must fail the run with exit status 1."""
    from dqt_hw.cli import main
    from dqt_hw.design import Design
    from dqt_hw.golden import GoldenArray, read_case, write_case

    toml = tmp_path / "quick.toml"
    toml.write_text(Design(rows=2, cols=2, acc_width=20, overflow="saturate",
                           view_rounding="half_up", max_pack=2,
                           name="sim_quick_tile2x2").to_toml())
    out = tmp_path / "set"
    assert main(["golden", "write", "--design", str(toml), "--out", str(out), "--random",
                 "--shape", "4x23x4", "--seed", "3", "--pairs", "8x8,4x4"]) == 0
    assert main(["sim", "--design", str(toml), "--golden", str(out), "--blocks", "2"]) == 0
    text = capsys.readouterr().out
    assert "dqt-hw sim: PASS: 2 of 2 golden case(s) passed on sim_quick_tile2x2" in text
    assert text.count("bulk path: all 4 jobs") == 2 and text.count("per-cycle path: 2 jobs") == 2

    name = "random_4x23x4_s3_b4x4_w20_saturate"
    case = read_case(out / name)
    m = case.manifest["arrays"]
    arrays = {k: GoldenArray(v.copy(), m[k]["bits"], m[k]["signed"]) for k, v in case.arrays.items()}
    arrays["out"].data[0, 0] ^= 1
    bad = tmp_path / "bad"
    write_case(bad, name, kind=case.kind, params=case.params, arrays=arrays,
               extra=case.manifest.get("extra"))
    assert main(["sim", "--design", str(toml), "--golden", str(bad / name), "--blocks", "1"]) == 1
    text = capsys.readouterr().out
    assert "bulk path: FAIL" in text and "per-cycle path: FAIL" in text
    assert "1 of 8 rows differ: row 0" in text
    assert f"dqt-hw sim: FAIL: 0 of 1 golden case(s) passed on sim_quick_tile2x2" in text
