"""dqt_hw.model: the bit-exact reference model (Numba kernels behind validating wrappers).

Public functions follow docs/arithmetic.md and equal the slow oracle in tests/naive.py
bit for bit.
"""

from .core import (
    MAX_ACC_BITS,
    AccStats,
    as_codes,
    avg_pool2d,
    conv2d,
    dqt_add,
    dqt_mul,
    gemm,
    lincomb,
    max_pool2d,
    nested_view,
    side_sums_conv2d,
    side_sums_gemm,
)
from .layer import Requant, conv_layer, dense_layer, requantize

__all__ = [
    "MAX_ACC_BITS",
    "AccStats",
    "Requant",
    "as_codes",
    "avg_pool2d",
    "conv2d",
    "conv_layer",
    "dense_layer",
    "dqt_add",
    "dqt_mul",
    "gemm",
    "lincomb",
    "max_pool2d",
    "nested_view",
    "requantize",
    "side_sums_conv2d",
    "side_sums_gemm",
]
