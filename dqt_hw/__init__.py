"""dqt_hw: bit-exact DQT arithmetic, generated hardware and cost models.

- ``dqt_hw.spec``:   formats, rounding and scalar integer primitives (the contract).
- ``dqt_hw.model``:  Numba kernels behind validating wrappers (the golden reference).
- ``dqt_hw.golden``: golden-vector sets (manifest + .npy + $readmemh hex).
- ``dqt_hw.hw``:     Amaranth generators of the hardware.
"""

import os as _os
import sys as _sys


def _wide_vectors():
    """Let LLVM use 512-bit vectors in the Numba kernels on AVX-512 CPUs.

    LLVM tunes recent Intel cores to prefer 256-bit vectors ("prefer-256-bit"), which
    halves the lanes of the kernels' int64 loops (the requantizing finish runs 1.4x
    slower). Unless the user chose Numba's target themselves (NUMBA_CPU_NAME or
    NUMBA_CPU_FEATURES) or set DQT_HW_WIDE_VECTORS=0, the host's own features plus
    "-prefer-256-bit" become Numba's CPU features: the same instructions, wider loops.
    Numba reads them when it first compiles (its cache keeps code per feature set)."""
    if (_os.environ.get("DQT_HW_WIDE_VECTORS", "1").strip() == "0"
            or _os.environ.get("NUMBA_CPU_NAME") or _os.environ.get("NUMBA_CPU_FEATURES")):
        return
    try:
        from llvmlite import binding

        feats = binding.get_host_cpu_features()
    except Exception:  # pragma: no cover - no LLVM feature query on this platform
        return
    if not feats.get("avx512f", False):
        return
    flat = feats.flatten() + ",-prefer-256-bit"
    _os.environ["NUMBA_CPU_FEATURES"] = flat
    cfg = _sys.modules.get("numba.core.config")
    if cfg is not None and getattr(cfg, "CPU_FEATURES", None) is None:
        cfg.CPU_FEATURES = flat  # numba was imported first: its config is read already


_wide_vectors()

from .spec import CONTRACT_VERSION  # noqa: E402

__version__ = "0.1.0"

__all__ = ["CONTRACT_VERSION", "__version__"]
