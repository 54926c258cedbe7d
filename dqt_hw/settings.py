"""Every switch and tuning threshold of dqt_hw's speed layer, in one place.

The ``DQT_HW_*`` environment variables are read once, when this module is first imported
(``import dqt_hw`` does it before anything else, so that Numba's CPU features are set
before it compiles anything); the thresholds are plain module attributes that the speed
layer reads at call time (``settings.SERIAL_WORK``), so a test or a measurement may set
one (``monkeypatch.setattr(settings, "SERIAL_WORK", 0)``). None of them changes a single
output code: they choose between ways of computing the very same integers.

This module imports nothing but ``os``: importing it never imports Numba.
docs/speed.md, "Settings", has the table of them all (default, effect, reader).
"""

from __future__ import annotations

import os as _os


def _on(name: str) -> bool:
    """A switch that is on unless the variable is "0" (surrounding blanks ignored)."""
    return _os.environ.get(name, "1").strip() != "0"


# ----------------------------------------------------------------------------- switches

VNNI = _on("DQT_HW_VNNI")
"""DQT_HW_VNNI=0: no integer kernel (``model/_simd.py``); the float-BLAS paths do the
work."""

KERNEL_LEVELS = ("vnni", "avx512bw", "avx2", "amx-emulated")
"""The values of DQT_HW_KERNEL."""

KERNEL = _os.environ.get("DQT_HW_KERNEL", "").strip()
"""DQT_HW_KERNEL=vnni, avx512bw or avx2: Numba compiles for, and the integer kernel takes,
that level below the host's (``dqt_hw/__init__.py`` turns the CPU features down);
amx-emulated: the AMX level's driver with its tile kernel emulated in Numba code
(``model/_amx.py``; slow, for tests on any CPU with AVX2)."""

WIDE_VECTORS = _on("DQT_HW_WIDE_VECTORS")
"""DQT_HW_WIDE_VECTORS=0: leave LLVM's preference for 256-bit vectors on AVX-512 CPUs
(``dqt_hw/__init__.py``)."""

PROGRAM = _os.environ.get("DQT_HW_PROGRAM", "1") != "0"
"""DQT_HW_PROGRAM=0: no whole-network programs; the executor runs layer by layer
(``net/plan.py``)."""

# ----------------------------------------------------------------------------- threads

SERIAL_WORK = 1 << 26
"""Multiply-adds below which a conv runs in the calling thread (``model/runtime.py``,
the conv drivers); the saturating driver uses SERIAL_WORK >> 4."""

PAR_MIN_WORK = 1 << 20
"""Element operations below which an element kernel (pooling, requantize, residual add)
runs in the calling thread alone (``model/runtime.par_range``)."""

PAR_COMPARE = 1 << 17
"""64-bit words from which the weight cache compares arrays over Numba's threads
(``model/wcache.py``)."""

LAYER_PAR_WORK = 1 << 20
"""Multiply-adds from which a one-call fused layer's images go over Numba's threads
(``model/drivers.py``)."""

PAR_BLOCKS_WORK = 1 << 23
"""Multiply-adds from which one image's weight blocks go over Numba's threads in a serial
call (``model/drivers.py``)."""

UNIT_PIXELS = 256
"""Fewest output pixels per unit of images of a threaded ``conv2d`` where the batch
allows (``model/drivers.py``): every unit streams all the weights once."""

TUNER_RETUNE = 64
"""Calls after which a ``runtime.Tuner`` times serial and threaded execution again."""

TUNER_SAMPLES = 3
"""Calls a ``runtime.Tuner`` times each way (serial, threaded) before it keeps the way of
the faster best call."""

SPLIT_WORK = 1 << 30
"""Multiply-adds per batch from which the layer-by-layer executor cuts a batch into one
part per thread (``net/executor.py``)."""

CHUNKS_PER_THREAD = 1
"""Chunks of images per Numba thread in a whole-network program (``net/program.py``)."""

# ----------------------------------------------------------------------------- blocking

COLS_BLOCK = 1 << 19
"""Floats of im2col per unit of the float path (2 MiB of float32: about L2)
(``model/drivers.py``)."""

MIN_UNIT_ROWS = 128
"""Fewest output rows per unit of the float path (fewer make OpenBLAS repack the weights
too often) (``model/drivers.py``)."""

VNNI_BLOCK = 1 << 19
"""Bytes of input windows per GEMM block of the integer kernel (about a quarter of L2)
(``model/plan.block_rows``)."""

DEPTHWISE_BLOCK = 1 << 18
"""Bytes of padded input rows per unit of a depthwise conv (an L2-resident band)
(``model/depthwise.py``)."""

DEPTHWISE_SERIAL_WORK = 1 << 20
"""Multiply-adds below which a depthwise conv runs in the calling thread: its kernel
does about a tenth of the GEMM's multiply-adds per second, so threads pay off on less
work than ``SERIAL_WORK`` (``model/depthwise.py``)."""

FINISH_TILE = 16
"""Output pixels per tile of the finishing passes of the float path that write
channels-first (``model/epilogue.py``: ``finish_rows``)."""

FINISH_RUN = 64
"""Output pixels per run of the integer kernel's channels-first finishing pass
(``model/epilogue.py``: ``finish_tiles``; the run's rows of the int32 tile stay in L1)."""

# ----------------------------------------------------------------------------- caches

CACHE_MIN_SIZE = 1 << 14
"""Weight arrays of fewer codes are prepared on every call, not cached
(``model/wcache.py``)."""

WEIGHT_CACHE_SIZE = 8
"""Weight arrays whose prepared forms the weight cache keeps (the latest used)."""

PROGRAMS_KEPT = 6
"""Compiled whole-network programs kept per network session (the latest used)
(``net/plan.py``)."""

CHANNELS_LAST = True
"""Keep activations channels-last between fused integer-kernel conv layers
(``net/executor.py``)."""
