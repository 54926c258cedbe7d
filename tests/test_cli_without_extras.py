"""A plain `pip install dqt_hw` (no `train` extra, so no torch) gives a working `dqt-hw`:
every command but `train` runs, and `train` says how to install what it needs."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# torch made unimportable in a child (sys.modules[name] = None makes `import name` raise)
_PRELUDE = "import sys; sys.modules['torch'] = None; from dqt_hw.cli import main; "


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _PRELUDE + code], capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("command", ["rtl", "golden", "cost", "synth", "sweep", "run", "demo",
                                     "train"])
def test_every_help_without_torch(command):
    r = _run(f"sys.exit(main([{command!r}, '--help']))")
    assert r.returncode == 0, r.stderr
    assert "usage: dqt-hw" in r.stdout


def test_commands_run_without_torch(tmp_path):
    r = _run(textwrap.dedent(f"""
        rc = main(['rtl', '--rows', '2', '--cols', '2', '-o', {str(tmp_path / 'rtl')!r}])
        rc |= main(['cost', '--rows', '2', '--cols', '2', '--no-plots', '--out',
                    {str(tmp_path / 'cost')!r}])
        sys.exit(rc)"""))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "rtl" / "dqt_tile.v").exists()
    assert (tmp_path / "cost" / "summary.json").exists()


def test_train_without_torch_says_how_to_install(tmp_path):
    r = _run(f"sys.exit(main(['train', '--out', {str(tmp_path / 'n.json')!r}]))")
    assert r.returncode == 1
    assert "dqt-hw train needs PyTorch: pip install 'dqt_hw[train]'" in r.stderr
    assert "Traceback" not in r.stderr
