"""What the CPU offers and the operating system grants (private): Numba's target
features, and the AMX tile unit.

Linux (5.16 and later) enables the AMX tile data state per process: a process must ask
with ``arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`` before its first tile
instruction, or that instruction faults (SIGILL). The request is made once, here, through
the C library's ``syscall`` (ctypes; no compiler needed), and checked with
``ARCH_GET_XCOMP_PERM``. The grant covers every thread of the process, those started
later (Numba's pool) included.

This module imports nothing but the standard library: ``dqt_hw/__init__.py`` asks before
Numba is imported, so that Numba's CPU features can leave AMX out where it was refused.
"""

from __future__ import annotations

import errno
import functools
import os
import platform
import sys

SYS_ARCH_PRCTL = 158  # x86-64 system call number of arch_prctl
ARCH_GET_XCOMP_PERM = 0x1022
ARCH_REQ_XCOMP_PERM = 0x1023
XFEATURE_XTILEDATA = 18  # the XSAVE state component of the tile registers


def host_features():
    """{feature: on} of the host CPU as LLVM sees it (its XSAVE state enabled by the OS
    included), or None where it cannot be read."""
    try:
        from llvmlite import binding

        return {k: bool(v) for k, v in binding.get_host_cpu_features().items()}
    except Exception:  # pragma: no cover - no LLVM feature query on this platform
        return None


def target_features():
    """{feature: on} for the CPU Numba compiles for: the host's, then Numba's
    ``CPU_FEATURES`` applied in order (the last mention of a feature counts; turning
    avx512f or avx2 off turns every AVX-512 feature off, as LLVM does). None where Numba
    compiles for another CPU by name or the features cannot be read. (Imports Numba's
    config and llvmlite when called.)"""
    from llvmlite import binding
    from numba.core import config

    if config.CPU_NAME not in (None, "host"):
        return None
    feats = {k: bool(v) for k, v in binding.get_host_cpu_features().items()}
    if config.CPU_FEATURES is not None:
        for f in config.CPU_FEATURES.split(","):
            f = f.strip()
            if f[:1] not in "+-" or len(f) < 2:
                continue
            on, name = f[0] == "+", f[1:]
            feats[name] = on
            if not on and name in ("avx512f", "avx2"):
                for k in list(feats):
                    if k.startswith("avx512"):
                        feats[k] = False
    return feats


@functools.cache
def request_amx() -> tuple[bool, str]:
    """(granted, why): asks Linux for the AMX tile data state once per process; ``why``
    says in words what was found (for reports and for the fallback's message)."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False, f"AMX needs Linux on x86-64 (this is {sys.platform} {platform.machine()})"
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syscall = libc.syscall
    except (OSError, AttributeError) as e:  # pragma: no cover - no C library to call
        return False, f"no syscall() in the C library: {e}"
    syscall.restype = ctypes.c_long
    rc = syscall(ctypes.c_long(SYS_ARCH_PRCTL), ctypes.c_long(ARCH_REQ_XCOMP_PERM),
                 ctypes.c_long(XFEATURE_XTILEDATA))
    if rc != 0:
        err = ctypes.get_errno()
        hint = ("a signal stack (sigaltstack) of this process is too small for the tile "
                "state: one installed before dqt_hw was imported, e.g. by faulthandler "
                "(python -X faulthandler, pytest's default; try -p no:faulthandler)"
                if err == errno.ENOSPC else "Linux before 5.16, or AMX off")
        return False, (f"arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) refused: "
                       f"{os.strerror(err)} (errno {err}; {hint})")
    mask = ctypes.c_uint64(0)
    rc = syscall(ctypes.c_long(SYS_ARCH_PRCTL), ctypes.c_long(ARCH_GET_XCOMP_PERM),
                 ctypes.byref(mask))
    if rc != 0 or not (mask.value >> XFEATURE_XTILEDATA) & 1:
        return False, (f"arch_prctl(ARCH_GET_XCOMP_PERM) does not show the tile data state "
                       f"(rc {rc}, mask {mask.value:#x})")
    return True, "granted by arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)"


def host_has_amx(feats) -> bool:
    """True where LLVM's feature map of the host (or of Numba's target) has the AMX tile
    and int8 instructions."""
    return bool(feats.get("amx-tile", False) and feats.get("amx-int8", False))
