"""Writing output files a reader may trust: whole or not at all.

:func:`atomic_path` gives a temporary path beside the destination; what is written there
is fsynced and renamed over the destination only when the writing succeeded, so a reader
(or an interrupted run) sees the old file or the new one, never a part of one.
:func:`atomic_write_text` writes a text that way, :func:`atomic_savefig` a figure.

A command that writes several files (``dqt-hw cost``, ``dqt-hw sweep``) calls
:func:`begin_outputs` once its inputs are checked: it makes the directory and removes the
previous run's ``summary.json``; every file is then replaced atomically, and
``summary.json``, listing them, is written last. So a directory with a ``summary.json``
holds every file it lists, whole and from the same run; one without it is unfinished.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_text", "atomic_savefig", "begin_outputs"]

SUMMARY = "summary.json"
"""The file a multi-file output directory writes last (:func:`begin_outputs`)."""


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path`` (same suffix); on a normal exit the file
    written there is fsynced and renamed to ``path``; on an exception it is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                               suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _mode(path))  # mkstemp makes 0600: the mode an open() would give
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _mode(path: Path) -> int:
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it, fsynced and renamed,
    so a reader sees the old file or the new one, never a part."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def atomic_savefig(fig, path, **kw) -> str:
    """``fig.savefig`` to ``path`` through :func:`atomic_path`; returns ``str(path)``."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or None, **kw)
    return str(path)


def begin_outputs(out) -> Path:
    """Make the output directory ``out`` and remove its ``summary.json`` (the mark of a
    finished run, written last); returns ``out`` as a Path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / SUMMARY).unlink(missing_ok=True)
    return out
