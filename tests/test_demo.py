"""The demo runs end to end from its design file, and what it writes is meaningful, fits
the demo's design and verifies against the model."""

from pathlib import Path

from dqt_hw.cli import main
from dqt_hw.design import Design
from dqt_hw.golden import degenerate, fits, read_set, read_set_manifest, saturated_fraction, verify_case

DEMO = Path(__file__).resolve().parents[1] / "designs" / "demo.toml"


def test_demo_writes_meaningful_golden_sets_for_its_design(tmp_path, capsys):
    assert main(["demo", "--design", str(DEMO), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "layer1.0.conv1" in out and "demo finished" in out and "<- design" in out
    design = Design.from_toml(DEMO)
    assert Design.from_mapping(read_set_manifest(tmp_path / "golden")["design"]) == design
    cases = read_set(tmp_path / "golden")
    pairs = {(c.params["b_a"], c.params["b_w"]) for c in cases}
    assert {(8, 8), (4, 4)} <= pairs and len(pairs) >= 3
    for case in cases:
        assert verify_case(case) == []
        assert fits(design, case) == [], case.manifest["case"]
        assert degenerate(case) == [], case.manifest["case"]
    # the demo's W saturates some 8/8 accumulators, not all
    full = [c for c in cases if (c.params["b_a"], c.params["b_w"]) == (8, 8)]
    assert 0.0 < saturated_fraction(full[0]) < 1.0


def test_cli_without_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: dqt-hw" in capsys.readouterr().out
