"""The demo runs end to end and what it writes verifies against the model."""

from dqt_hw.cli import main
from dqt_hw.golden import read_set, verify_case


def test_demo_writes_verified_golden_vectors(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "layer1.0.conv1" in out and "demo finished" in out
    cases = read_set(tmp_path / "golden")
    assert len(cases) == 4
    for case in cases:
        assert verify_case(case) == []
    sat = [c for c in cases if c.params["overflow"] == "saturate" and c.params["b_a"] == 8]
    assert sat[0].manifest["extra"]["stats"]["events"] > 0  # W = 18 really saturates at 8/8


def test_cli_without_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: dqt-hw" in capsys.readouterr().out
