"""The fuzz suite of the input formats (tests/fuzz_inputs.py), one subprocess per format
with its address space limited: every mutated document must give a valid result or one
line of ValueError/TypeError, never another exception, a memory blow-up or, for a
command, a partial output. The counts are printed (pytest -s) and recorded as
properties (--junitxml)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fuzz_inputs import EXAMPLES  # noqa: E402


def _run(*args, timeout=240, tmp=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    if tmp is not None:
        env["TMPDIR"] = str(tmp)
    return subprocess.run([sys.executable, str(HERE / "fuzz_inputs.py"), *args],
                          capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=HERE.parent)


@pytest.mark.parametrize("fmt", sorted(EXAMPLES))
def test_fuzz_format(fmt, record_property, tmp_path):
    r = _run(fmt, tmp=tmp_path)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-8000:]
    # its work folder goes when it ends (hundreds of runs once filled a CI disk)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    counts = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"fuzz {fmt}: {counts}")
    for k in ("tried", "refused", "accepted"):
        record_property(f"fuzz_{fmt}_{k}", counts[k])
    # (cli: a grid the checks accept would run a sweep, so it is not run: not counted)
    assert counts["format"] == fmt and counts["tried"] >= EXAMPLES[fmt] * 3 // 4
    # the mutations must produce many bad documents, and some must still be valid (the
    # bound sits far below the expected share: numeric refuses ~30 % of its random draws,
    # close enough to tried // 4 for a random run to fall below it now and then)
    assert counts["refused"] >= counts["tried"] // 8, counts
    assert counts["accepted"] >= 1 or fmt == "cli", counts


def test_fuzz_memory_limit_holds():
    """The bound is real: in the fuzz process, allocating more than the headroom fails."""
    r = _run("--probe", timeout=120)
    assert r.returncode == 0, r.stderr[-4000:]
    assert json.loads(r.stdout.strip().splitlines()[-1])["probe"] == "MemoryError"
