"""``dqt-hw info``: the kernel level, the CPU features that choose it, versions and tools,
as text and as JSON, each checked against its own source."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from llvmlite import binding

from dqt_hw.cli import main
from dqt_hw.model import _simd


def test_info_json_names_the_level_features_and_versions(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    k = info["kernel"]
    assert (k["level"], k["vector_level"], k["amx"], k["amx_why"]) == (
        _simd.LEVEL, _simd.VECTOR_LEVEL, _simd.AMX_ON, _simd.AMX_WHY)
    host = binding.get_host_cpu_features()
    for f, v in info["features"].items():
        assert v["host"] == bool(host.get(f, False)), f
    assert info["packages"]["numpy"] == np.__version__
    assert set(info["tools"]) == {"verilator", "yosys"}


def test_info_text(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"kernel: {_simd.describe()}\n" in out
    assert f"AMX: {'used' if _simd.AMX_ON else 'not used'} ({_simd.AMX_WHY})" in out


@pytest.mark.skipif(not binding.get_host_cpu_features().get("avx512f", False),
                    reason="no AVX-512 to turn off")
def test_info_shows_features_turned_off_for_numba():
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CPU_FEATURES",
                                                             "NUMBA_CPU_NAME")}
    env["DQT_HW_KERNEL"] = "avx2"
    out = subprocess.run([sys.executable, "-m", "dqt_hw.cli", "info"], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "avx512f (off for Numba)" in out.stdout and "AVX2 (vpmaddwd" in out.stdout
