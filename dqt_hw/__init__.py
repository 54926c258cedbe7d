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
    - with DQT_HW_KERNEL=avx512bw or avx2, the features above that level turned off
      ("-avx512vnni", or "-avx512f"), so that Numba compiles for, and the integer kernel
      of ``dqt_hw.model._simd`` takes, that level (to test and measure it on a newer CPU).

    Numba reads the features when it first compiles; its cache keeps code per feature
    set, so code for one level is never loaded for another."""
    if _os.environ.get("NUMBA_CPU_NAME") or _os.environ.get("NUMBA_CPU_FEATURES"):
        return
    try:
        from llvmlite import binding

        feats = binding.get_host_cpu_features()
    except Exception:  # pragma: no cover - no LLVM feature query on this platform
        return
    extra = []
    if feats.get("avx512f", False) and settings.WIDE_VECTORS:
        extra.append("-prefer-256-bit")
    level = settings.KERNEL
    if level not in ("", "avx512bw", "avx2"):
        raise ValueError(f"DQT_HW_KERNEL must be 'avx512bw' or 'avx2' (a level below the "
                         f"host's), not {level!r}")
    need = {"avx512bw": ("avx512f", "avx512bw"), "avx2": ("avx2",)}.get(level, ())
    missing = [f for f in need if not feats.get(f, False)]
    if missing:
        raise ValueError(f"DQT_HW_KERNEL={level} needs a CPU with {', '.join(need)}; this "
                         f"one lacks {', '.join(missing)}")
    if level == "avx512bw":
        extra.append("-avx512vnni")
    elif level == "avx2":
        extra.append("-avx512f")
    if not extra:
        return
    flat = feats.flatten() + "," + ",".join(extra)
    _os.environ["NUMBA_CPU_FEATURES"] = flat
    cfg = _sys.modules.get("numba.core.config")
    if cfg is not None and getattr(cfg, "CPU_FEATURES", None) is None:
        cfg.CPU_FEATURES = flat  # numba was imported first: its config is read already


_numba_target()

from .spec import CONTRACT_VERSION  # noqa: E402

__version__ = "0.1.0"

__all__ = ["CONTRACT_VERSION", "__version__"]
