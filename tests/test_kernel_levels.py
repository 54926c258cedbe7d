"""The exact integer kernel at every level below the host's: the kernel and network
tests run again in a child process whose Numba compiles for AVX-512 VNNI (below AMX),
AVX-512BW (``vpmaddwd`` on 512 bits) or AVX2 (``vpmaddwd`` on 256 bits), as on a CPU
without the levels above (``DQT_HW_KERNEL``, see dqt_hw/__init__.py), and once more at
the AMX level with its tile kernel emulated (``amx-emulated``, any CPU with AVX2; on an
AMX host the other tests run the instructions themselves); each level's codes are
checked against the oracle and the other paths there, bit for bit."""

import os
import subprocess
import sys

import pytest
from llvmlite import binding

HOST = binding.get_host_cpu_features()
AMX = HOST.get("amx-tile", False) and HOST.get("amx-int8", False)
LEVELS = [lv for lv, ok in (("vnni", AMX and HOST.get("avx512vnni", False)),
                            ("avx512bw", HOST.get("avx512vnni", False)
                                         and HOST.get("avx512bw", False)),
                            ("avx2", HOST.get("avx512f", False) and HOST.get("avx2", False)),
                            ("amx-emulated", HOST.get("avx2", False)))
          if ok]


# amx-emulated changes only the integer GEMM (``gemm_tiles``): the saturating kernel and
# the byte views run the host's vector level there, which the main run tests
SELECT = {"amx-emulated": "not numba_target and not saturating and not padded_view and not "
                          "channels_last_views"}


@pytest.mark.skipif(not LEVELS, reason="the host's own level is the only one: the other "
                                       "tests run it")
@pytest.mark.parametrize("level", LEVELS or ["none"])
def test_kernel_level_in_a_child(level):
    here = os.path.dirname(os.path.abspath(__file__))
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CPU_FEATURES", "NUMBA_CPU_NAME", "DQT_HW_VNNI")}
    env["DQT_HW_KERNEL"] = level
    check = subprocess.run(
        [sys.executable, "-c", "from dqt_hw.model import _simd; print(_simd.LEVEL)"],
        env=env, capture_output=True, text=True, check=True)
    assert check.stdout.strip() == ("amx" if level == "amx-emulated" else level)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         "-p", "no:xdist", os.path.join(here, "test_simd.py"),
         os.path.join(here, "test_net_program.py"), "-k", SELECT.get(level, "not numba_target")],
        env=env, capture_output=True, text=True, cwd=os.path.dirname(here))
    tail = out.stdout[-3000:] + out.stderr[-2000:]
    assert out.returncode == 0, tail
    assert " passed" in out.stdout and "skipped" not in out.stdout.splitlines()[-1], tail
