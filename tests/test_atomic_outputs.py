"""Outputs a reader may trust (docs/formats.md): a directory of files that must agree
(``dqt-hw rtl``: Verilog, sidecar, waivers) is replaced as a whole, so an error or a kill
part-way leaves the old directory (or, for an instant, none), never a mixture."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dqt_hw.design import Design
from dqt_hw.files import staged_dir
from dqt_hw.hw import cli as rtl_cli

ROOT = Path(__file__).resolve().parent.parent


def _snapshot(d: Path) -> dict:
    """{relative path: bytes} of every file under ``d`` (hidden ones included)."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _siblings(d: Path) -> list[str]:
    return sorted(p.name for p in d.parent.iterdir() if p.name != d.name)


def test_staged_dir_keeps_old_files_and_replaces_as_a_whole(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    (out / "same.txt").write_text("v1")
    with staged_dir(out) as stage:
        assert _snapshot(stage) == {"old.txt": b"old", "same.txt": b"v1"}
        (stage / "same.txt").unlink()  # replaced, not written through the link
        (stage / "same.txt").write_text("v2")
        (stage / "new.txt").write_text("new")
        assert (out / "same.txt").read_text() == "v1"  # not visible before the end
        assert not (out / "new.txt").exists()
    assert _snapshot(out) == {"old.txt": b"old", "same.txt": b"v2", "new.txt": b"new"}
    assert _siblings(out) == []  # no staging directory left behind


def test_staged_dir_error_leaves_the_old_directory(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.v").write_text("module a; endmodule\n")
    before = _snapshot(out)
    with pytest.raises(RuntimeError, match="disk full"):
        with staged_dir(out) as stage:
            (stage / "b.v").write_text("half")
            raise RuntimeError("disk full")
    assert _snapshot(out) == before
    assert _siblings(out) == []


def test_staged_dir_refuses_a_file_as_directory(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(ValueError, match=r"output directory '.*f' exists and is not a directory"):
        with staged_dir(f):
            pass


def test_rtl_error_part_way_leaves_the_old_outputs(tmp_path, monkeypatch):
    out = tmp_path / "rtl"
    d1 = Design(component="pe", name="pe_a")
    rtl_cli.write_designs([d1], out)
    before = _snapshot(out)
    assert set(before) == {"pe_a.v", "pe_a.json", "verilator.vlt"}
    real = rtl_cli.atomic_write_text
    calls = []

    def failing(path, text):
        calls.append(Path(path).name)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(path, text)

    monkeypatch.setattr(rtl_cli, "atomic_write_text", failing)
    with pytest.raises(OSError, match="No space left"):
        rtl_cli.write_designs([Design(component="pe", name="pe_a", acc_width=20)], out)
    assert _snapshot(out) == before
    assert _siblings(out) == []


_WRITER = r"""
import sys, time
from pathlib import Path
from dqt_hw.design import Design
from dqt_hw.hw import cli
real = cli.atomic_write_text
def slow(path, text):  # widen the window a kill can land in
    real(path, text)
    time.sleep(0.02)
cli.atomic_write_text = slow
designs = [Design(component="pe", name=f"pe_{i}", acc_width=int(sys.argv[2])) for i in range(4)]
cli.write_designs(designs, Path(sys.argv[1]))
print("done", flush=True)
"""


def _rtl_state(out: Path, old: dict, new: dict) -> str:
    if not out.exists():
        return "none"
    snap = _snapshot(out)
    if snap == old:
        return "old"
    if snap == new:
        return "new"
    return "mixture"


def test_rtl_killed_at_random_points_never_leaves_a_mixture(tmp_path):
    """``dqt-hw rtl``'s writer killed (SIGKILL) at seeded random points: the directory
    holds the old outputs, all the new ones or (between the two renames) nothing."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ref = tmp_path / "ref"
    for w, name in ((20, "old"), (24, "new")):
        subprocess.run([sys.executable, "-c", _WRITER, str(ref / name), str(w)], env=env,
                       check=True, capture_output=True)
    old, new = _snapshot(ref / "old"), _snapshot(ref / "new")
    assert old != new and set(old) == set(new)
    # how long the writer takes, so that kills spread over its whole run
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", _WRITER, str(tmp_path / "t"), "24"], env=env,
                   check=True, capture_output=True)
    span = time.perf_counter() - t0
    rng = random.Random(13)
    seen = set()
    for trial in range(8):
        out = tmp_path / f"o{trial}"
        shutil.copytree(ref / "old", out)
        p = subprocess.Popen([sys.executable, "-c", _WRITER, str(out), "24"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        # the last half of the run is where the files are written
        time.sleep(span * rng.uniform(0.5, 1.1))
        p.send_signal(signal.SIGKILL)
        p.wait()
        state = _rtl_state(out, old, new)
        assert state != "mixture", f"kill {trial}: a mixture of old and new files in {out}"
        seen.add(state)
    assert seen <= {"old", "new", "none"}


def _shipped_run(out, n=24):
    from dqt_hw.net import network as nw
    from dqt_hw.net.results import run_results
    from dqt_hw.train import data as data_mod

    net = nw.load(nw.default_path())
    ds = data_mod.load(net.provenance.get("data", "digits"))
    return run_results(net, ds.x_test[:n], ds.y_test[:n], out=out, log=lambda *a: None)


def test_run_outputs_summary_last_and_only_when_whole(tmp_path, monkeypatch):
    import json

    from dqt_hw.net import results

    out = tmp_path / "run"
    res = _shipped_run(out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["files"][-1] == str(out / "summary.json")
    assert len(summary["files"]) == 2 + len(res["plots"]) and len(res["plots"]) >= 1
    assert all(Path(f).is_file() for f in summary["files"])
    # a second run that fails while plotting: no summary.json, so the directory reads as
    # unfinished, and the files it did replace are whole
    real = results.atomic_savefig
    monkeypatch.setattr(results, "atomic_savefig", lambda fig, p, **kw: (
        (_ for _ in ()).throw(OSError(28, "No space left on device"))
        if Path(p).name != "accuracy_vs_bitops.png" else real(fig, p, **kw)))
    with pytest.raises(OSError, match="No space left"):
        _shipped_run(out)
    assert not (out / "summary.json").exists()
    assert json.loads((out / "results.json").read_text())["test_inputs"] == 24
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_unwritable_output_directory_is_named(tmp_path, capsys):
    from dqt_hw.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory is asked for")
    out = blocker / "out"
    assert main(["rtl", "--component", "pe", "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"cannot write the output directory {str(out)!r}: a part of its path is a file"), err
