"""dqt_hw.golden: golden-vector sets (manifest + .npy + $readmemh hex), writer and reader.

The format is documented in golden/README.md.
"""

from .cases import KINDS, build_case, compute, make_case, verify_case, write_canonical
from .fit import MIN_DISTINCT, check_meaningful, degenerate, fits, saturated_fraction
from .io import (
    FORMAT_NAME,
    FORMAT_VERSION,
    SUPPORTED_CONTRACTS,
    GoldenArray,
    GoldenCase,
    hex_text,
    read_case,
    read_set,
    read_set_manifest,
    update_set,
    write_case,
    write_set,
)
from .schema import MAX_BITS, MAX_ELEMENTS

__all__ = [
    "MIN_DISTINCT",
    "build_case",
    "check_meaningful",
    "degenerate",
    "fits",
    "read_set_manifest",
    "saturated_fraction",
    "write_set",
    "update_set",
    "MAX_BITS",
    "MAX_ELEMENTS",
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
