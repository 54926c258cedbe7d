"""dqt_hw: bit-exact DQT arithmetic, generated hardware and cost models.

- ``dqt_hw.spec``:   formats, rounding and scalar integer primitives (the contract).
- ``dqt_hw.model``:  Numba kernels behind validating wrappers (the golden reference).
- ``dqt_hw.golden``: golden-vector sets (manifest + .npy + $readmemh hex).
- ``dqt_hw.hw``:     Amaranth generators of the hardware.
"""

import os as _os
import sys as _sys

from . import settings  # the DQT_HW_* switches, read once (imports no Numba)


def _numba_target():
    """Numba's CPU features, unless the user chose them (NUMBA_CPU_NAME or
    NUMBA_CPU_FEATURES): the host's own, plus

    - "-prefer-256-bit" on AVX-512 CPUs (unless DQT_HW_WIDE_VECTORS=0): LLVM tunes recent
      Intel cores to prefer 256-bit vectors, which halves the lanes of the kernels' int64
      loops (the requantizing finish runs 1.4x slower); the same instructions, wider
      loops;
    - with DQT_HW_KERNEL=vnni, avx512bw or avx2, the features above that level turned
      off ("-amx-tile,-amx-int8", "-avx512vnni" or "-avx512f"), so that Numba compiles
      for, and the integer kernel of ``dqt_hw.model._simd`` takes, that level (to test
      and measure it on a newer CPU);
    - on a CPU with AMX-INT8, the tile state asked of the OS (``_cpu.request_amx``) and
      AMX turned off where it is refused, so that no tile instruction is compiled;
    - with DQT_HW_KERNEL=amx-emulated (the AMX level's driver with the tile kernel in
      Numba code, ``model/_amx.py``), "-amx-tile,-amx-int8,-amx-bf16": a feature string
      of its own, so that Numba's cache keeps that level's code apart.

    Numba reads the features when it first compiles; its cache keeps code per feature
    set, so code for one level is never loaded for another."""
    if _os.environ.get("NUMBA_CPU_NAME") or _os.environ.get("NUMBA_CPU_FEATURES"):
        return
    from . import _cpu

    feats = _cpu.host_features()
    if feats is None:  # pragma: no cover - no LLVM feature query on this platform
        return
    extra = []
    if feats.get("avx512f", False) and settings.WIDE_VECTORS:
        extra.append("-prefer-256-bit")
    level = settings.KERNEL
    if level not in ("",) + settings.KERNEL_LEVELS:
        raise ValueError(f"DQT_HW_KERNEL must be one of "
                         f"{', '.join(repr(v) for v in settings.KERNEL_LEVELS)}, not {level!r}")
    need = {"vnni": ("avx512f", "avx512bw", "avx512vnni"), "avx512bw": ("avx512f", "avx512bw"),
            "avx2": ("avx2",), "amx-emulated": ("avx2",)}.get(level, ())
    missing = [f for f in need if not feats.get(f, False)]
    if missing:
        raise ValueError(f"DQT_HW_KERNEL={level} needs a CPU with {', '.join(need)}; this "
                         f"one lacks {', '.join(missing)}")
    if level == "amx-emulated":
        extra.append("-amx-tile,-amx-int8,-amx-bf16")
    elif _cpu.host_has_amx(feats) and (level or not _cpu.request_amx()[0]):
        extra.append("-amx-tile,-amx-int8")
    if level == "avx512bw":
        extra.append("-avx512vnni")
    elif level == "avx2":
        extra.append("-avx512f")
    if not extra:
        return
    flat = ",".join([f"{'+' if on else '-'}{k}" for k, on in sorted(feats.items())] + extra)
    _os.environ["NUMBA_CPU_FEATURES"] = flat
    cfg = _sys.modules.get("numba.core.config")
    if cfg is not None and getattr(cfg, "CPU_FEATURES", None) is None:
        cfg.CPU_FEATURES = flat  # numba was imported first: its config is read already


_numba_target()


def _numba_cache_guard(here):
    """Numba recompiles a cached kernel when its own file changes, not when a function it
    inlines or calls from another module does (``intops.round_shift``, ``_simd``'s
    kernels, ``fused.decode`` ...): a stale kernel would then run old code. So the
    in-tree caches of ``dqt_hw.model`` and ``dqt_hw.net`` are keyed on the sources they
    compile from: where a digest of the .py files of ``model``, ``net``, ``spec`` and
    ``settings.py`` differs from the one stored beside the caches, their ``*.nbi`` /
    ``*.nbc`` files are deleted (Numba then compiles afresh) and the new digest is
    stored. Read-only trees (an installed package whose caches live elsewhere, or none)
    are left alone. ``here``: the package's folder."""
    import hashlib

    h = hashlib.sha256()
    dirs = [_os.path.join(here, d) for d in ("model", "net", "spec")]
    try:
        for d in dirs:
            for name in sorted(_os.listdir(d)):
                if name.endswith(".py"):
                    with open(_os.path.join(d, name), "rb") as f:
                        h.update(name.encode() + b"\0" + f.read())
        with open(_os.path.join(here, "settings.py"), "rb") as f:
            h.update(f.read())
    except OSError:  # pragma: no cover - sources not readable: nothing to guard
        return
    digest = h.hexdigest()
    stamp = _os.path.join(here, "model", "__pycache__", "dqt_hw_sources.sha256")
    try:
        with open(stamp) as f:
            if f.read().strip() == digest:
                return
    except OSError:
        pass
    try:
        for d in dirs[:2]:
            cache = _os.path.join(d, "__pycache__")
            if _os.path.isdir(cache):
                for name in _os.listdir(cache):
                    if name.endswith((".nbi", ".nbc")):
                        try:
                            _os.remove(_os.path.join(cache, name))
                        except FileNotFoundError:  # another process got there first
                            pass
        _os.makedirs(_os.path.dirname(stamp), exist_ok=True)
        tmp = f"{stamp}.{_os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(digest + "\n")
        _os.replace(tmp, stamp)
    except OSError:  # pragma: no cover - a read-only tree: Numba caches elsewhere or not
        pass


_numba_cache_guard(_os.path.dirname(_os.path.abspath(__file__)))

from .spec import CONTRACT_VERSION  # noqa: E402

__version__ = "0.1.0"

__all__ = ["CONTRACT_VERSION", "__version__"]
