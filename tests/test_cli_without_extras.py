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
                                     "train", "info"])
def test_every_help_without_torch(command):
    r = _run(f"sys.exit(main([{command!r}, '--help']))")
    assert r.returncode == 0, r.stderr
    assert "usage: dqt-hw" in r.stdout


def test_commands_run_without_torch(tmp_path):
    r = _run(textwrap.dedent(f"""
        rc = main(['rtl', '--rows', '2', '--cols', '2', '-o', {str(tmp_path / 'rtl')!r}])
        rc |= main(['cost', '--rows', '2', '--cols', '2', '--no-plots', '--out',
                    {str(tmp_path / 'cost')!r}])
        rc |= main(['info'])
        sys.exit(rc)"""))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "rtl" / "dqt_tile.v").exists()
    assert (tmp_path / "cost" / "summary.json").exists()


def test_train_without_torch_says_how_to_install(tmp_path):
    r = _run(f"sys.exit(main(['train', '--out', {str(tmp_path / 'n.json')!r}]))")
    assert r.returncode == 1
    assert "dqt-hw train needs PyTorch: pip install 'dqt_hw[train]'" in r.stderr
    assert "Traceback" not in r.stderr


def test_exit_status_and_debug(tmp_path, capsys):
    """Refused input: one line, exit status 2 (a usage error's); --debug shows the
    traceback instead."""
    from dqt_hw.cli import EXIT_BAD_INPUT, main

    assert main(["rtl", "--rows", "0", "-o", str(tmp_path / "a")]) == EXIT_BAD_INPUT == 2
    err = capsys.readouterr().err
    assert err == "dqt-hw rtl: error: flags: rows R must be in [1, 64], not 0\n"
    with pytest.raises(ValueError, match=r"rows R must be in \[1, 64\], not 0"):
        main(["--debug", "rtl", "--rows", "0", "-o", str(tmp_path / "b")])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("option, value", [("--limit", "0"), ("--limit", "-5"),
                                           ("--limit", "2.5"), ("--calibration", "-1"),
                                           ("--batch-size", "0")])
def test_run_counts_are_bounded(tmp_path, capsys, option, value):
    """`run --limit 0` used to run everything and `--limit -5` all but five: a count out
    of its range is a usage error (exit status 2) before anything runs or is written."""
    from dqt_hw.cli import main

    with pytest.raises(SystemExit) as e:
        main(["run", option, value, "--out", str(tmp_path / "out")])
    assert e.value.code == 2
    assert f"argument {option}: must be an integer" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
