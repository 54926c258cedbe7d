"""`make synth` driver: a missing `stat` result is a failure (no real Yosys needed here)."""

from __future__ import annotations

import stat

import pytest

from dqt_hw.hw.synth import SynthError, main, synthesize


def fake_yosys(tmp_path, body: str):
    exe = tmp_path / "fake-yosys"
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return str(exe)


def test_silent_exit_without_stat_is_a_failure(tmp_path):
    exe = fake_yosys(tmp_path, "echo '3.1.1. Executing ABC.'\nexit 0\n")
    with pytest.raises(SynthError, match=r"printed no `stat -tech cmos` result for top"):
        synthesize(tmp_path / "x.v", "top", yosys=exe)


def test_nonzero_exit_is_a_failure(tmp_path):
    exe = fake_yosys(tmp_path, "echo 'ERROR: no such module'\nexit 1\n")
    with pytest.raises(SynthError, match=r"yosys failed on top \(exit 1\)"):
        synthesize(tmp_path / "x.v", "top", yosys=exe)


def test_stat_is_parsed(tmp_path):
    exe = fake_yosys(tmp_path, "printf '   Number of cells:                 56\\n"
                               "   Estimated number of transistors:        286\\n'\n")
    res = synthesize(tmp_path / "x.v", "top", yosys=exe)
    assert (res["cells"], res["transistors"]) == (56, 286)
    assert res["transistors_exclude_flipflops"] is False


def test_stat_with_flipflops_is_marked(tmp_path):
    exe = fake_yosys(tmp_path, "printf '   Number of cells:   11692\n"
                               "   Estimated number of transistors:      62068+\n'\n")
    res = synthesize(tmp_path / "x.v", "top", yosys=exe)
    assert (res["transistors"], res["transistors_exclude_flipflops"]) == (62068, True)


def test_main_reports_failure(tmp_path, capsys):
    exe = fake_yosys(tmp_path, "exit 0\n")
    assert main(["--yosys", exe, "dqt_pe"]) == 1
    assert "no statistics for ['dqt_pe']" in capsys.readouterr().err
    assert main(["--yosys", exe, "not_a_config"]) == 1
