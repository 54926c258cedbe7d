"""dqt_hw.model: the bit-exact reference model (Numba kernels behind validating wrappers).

Public functions follow docs/arithmetic.md and equal the slow oracle in tests/naive.py
bit for bit. The speed layer behind them (docs/speed.md): ``plan`` (how a conv's exact
sums are computed), ``views`` (layouts and views), ``epilogue`` (the finishing passes),
``drivers`` (the conv drivers), ``fused`` (fused layers in one call), ``runtime``
(threads), ``wcache`` (the weight cache), ``intops`` (round_shift and the mode codes),
``_simd`` (the hand-written kernels) and ``_kernels`` (the sequential kernels). For the
network executor: ``fused_conv`` / ``FusedConv`` (a layer prepared once),
``fused_add`` / ``AddConsts`` (a residual add in one pass), ``global_avg_pool_nhwc``,
``code_dtype``, ``integer_kernel``, the bit-plane form (``to_planes``,
``from_planes``, ``view_from_planes``, ``planes_read``: ``planes``), and the threads' ``thread_count``, ``run_units``,
``serial_scope``.
"""

from .core import (
    MAX_MODEL_ACC_WIDTH,
    AccStats,
    as_codes,
    avg_pool2d,
    conv2d,
    dqt_add,
    dqt_mul,
    gemm,
    global_avg_pool_nhwc,
    lincomb,
    max_pool2d,
    nested_view,
    side_sums_conv2d,
    side_sums_gemm,
)
from .fused import AddConsts, fused_add
from .layer import (ConvGeometry, FusedConv, Requant, code_dtype, conv_layer, dense_layer,
                    fused_conv, requantize)
from .plan import ConvArgs, integer_kernel
from .planes import PLANE_WORD_BITS, from_planes, planes_read, to_planes, view_from_planes
from .runtime import run_units, serial_scope, thread_count

__all__ = [
    "MAX_MODEL_ACC_WIDTH",
    "PLANE_WORD_BITS",
    "AccStats",
    "AddConsts",
    "ConvArgs",
    "FusedConv",
    "Requant",
    "as_codes",
    "avg_pool2d",
    "code_dtype",
    "conv2d",
    "ConvGeometry",
    "conv_layer",
    "dense_layer",
    "dqt_add",
    "dqt_mul",
    "fused_add",
    "from_planes",
    "fused_conv",
    "gemm",
    "global_avg_pool_nhwc",
    "integer_kernel",
    "lincomb",
    "max_pool2d",
    "nested_view",
    "planes_read",
    "requantize",
    "run_units",
    "serial_scope",
    "side_sums_conv2d",
    "side_sums_gemm",
    "thread_count",
    "to_planes",
    "view_from_planes",
]
