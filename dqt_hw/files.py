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

A command whose files must agree with each other (``dqt-hw rtl``: a Verilog file, its
sidecar and the lint waivers) writes them into :func:`staged_dir`: a hidden directory
beside the destination that starts as a copy (hard links) of the destination and replaces
it by renames once everything is written (:func:`replace_dir`), so a reader sees the old
directory or the new one, never a mixture, and an error or a kill leaves the old one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_text", "atomic_savefig", "begin_outputs",
           "replace_dir", "staged_dir"]

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
        return 0o666 & ~_umask()


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


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


def replace_dir(tmp, final) -> Path:
    """Move the finished directory ``tmp`` to ``final`` (a sibling), replacing what was
    there by renames only: a reader sees the old directory or the new one (or, for the
    instant between the two renames, none)."""
    tmp, final = Path(tmp), Path(final)
    _fsync_tree(tmp)
    old = None
    if final.exists() or final.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old.", dir=final.parent))
        os.rename(final, old / final.name)
    os.rename(tmp, final)
    _fsync_dir(final.parent)
    if old is not None:
        shutil.rmtree(old)
    return final


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root`` (what a rename then publishes)."""
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    os.fsync(f.fileno())
        _fsync_dir(Path(dirpath))


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@contextlib.contextmanager
def staged_dir(final, *, keep: bool = True):
    """Yield a hidden directory beside ``final`` to write into; on a normal exit it
    replaces ``final`` (:func:`replace_dir`), on an exception it is removed and ``final``
    is left as it was. With ``keep``, it starts with ``final``'s entries (hard links, so
    nothing is copied), so files not written again stay: replace a kept file (write a new
    one and rename it over, as :func:`atomic_write_text` does), never open it for writing,
    which would write through the link into ``final``."""
    final = Path(final)
    if final.exists() and not final.is_dir():
        raise ValueError(f"output directory {str(final)!r} exists and is not a directory")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp",
                                    dir=final.parent))
    except OSError as e:  # name the directory asked for, not the temporary one
        why = e.strerror
        if isinstance(e, FileExistsError):  # mkdir of a path through a file
            why = "a part of its path is a file"
        raise OSError(f"cannot write the output directory {str(final)!r}: {why}") from None
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700: the mode mkdir would give
        if keep and final.is_dir():
            shutil.copytree(final, tmp, symlinks=True, copy_function=_link_or_copy,
                            dirs_exist_ok=True)
        yield tmp
        replace_dir(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
