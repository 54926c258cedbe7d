"""dqt_hw.golden: golden-vector sets (manifest + .npy + $readmemh hex), writer and reader.

The format is documented in golden/README.md.
"""

from .cases import KINDS, compute, make_case, verify_case, write_canonical
from .io import (
    FORMAT_NAME,
    FORMAT_VERSION,
    SUPPORTED_CONTRACTS,
    GoldenArray,
    GoldenCase,
    hex_text,
    read_case,
    read_set,
    write_case,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "KINDS",
    "SUPPORTED_CONTRACTS",
    "GoldenArray",
    "GoldenCase",
    "compute",
    "hex_text",
    "make_case",
    "read_case",
    "read_set",
    "verify_case",
    "write_canonical",
    "write_case",
]
