"""dqt_hw.spec: formats, rounding and scalar integer primitives — the single source of truth.

Everything here works on Python ints and follows docs/arithmetic.md. The Numba model,
the hardware generators and the test oracle all follow these definitions.
"""

from .constants import (
    DEFAULT_CONST_BITS,
    MAX_CONST_BITS,
    MAX_MODEL_ACC_WIDTH,
    Constant,
    align,
    lincomb,
    quantize_constant,
)
from .format import MAX_MASTER_BITS, MIN_MASTER_BITS, Format, code_range
from .intops import (
    MAX_INT_BITS,
    check_width,
    clamp,
    saturate,
    signed_bits,
    signed_bits_for_magnitude,
    signed_range,
    unsigned_range,
    wrap,
)
from .nested import check_view_widths, nested_view
from .planes import (PLANE_WORD_BITS, from_planes, plane_words, planes_read, to_planes,
                     view_from_planes)
from .ops import add_constants, mul_constants, requant_constants, switch_shifts
from .quantize import (
    dequantize,
    fit_format,
    quantize,
    quantize_per_channel,
    quantize_per_tensor,
)
from .rounding import ROUNDING_CODES, ROUNDINGS, check_rounding, round_div, round_shift

CONTRACT_VERSION = "1.0"
"""Version of docs/arithmetic.md that this code implements (golden manifests carry it)."""

OVERFLOW_MODES = ("wrap", "saturate", "trap")
"""Accumulator overflow modes (docs/arithmetic.md, "Accumulation")."""

OVERFLOW_CODES = {name: i for i, name in enumerate(OVERFLOW_MODES)}


def check_overflow(overflow) -> str:
    """Return ``overflow`` if it names an overflow mode, else raise."""
    if not isinstance(overflow, str):
        raise TypeError(f"overflow must be a string, one of {OVERFLOW_MODES}, not {overflow!r}")
    if overflow not in OVERFLOW_CODES:
        raise ValueError(f"overflow must be one of {OVERFLOW_MODES}, not {overflow!r}")
    return overflow


__all__ = [
    "CONTRACT_VERSION",
    "Constant",
    "DEFAULT_CONST_BITS",
    "Format",
    "MAX_CONST_BITS",
    "MAX_MODEL_ACC_WIDTH",
    "MAX_INT_BITS",
    "MAX_MASTER_BITS",
    "MIN_MASTER_BITS",
    "OVERFLOW_CODES",
    "OVERFLOW_MODES",
    "PLANE_WORD_BITS",
    "ROUNDINGS",
    "ROUNDING_CODES",
    "add_constants",
    "align",
    "check_overflow",
    "check_rounding",
    "check_view_widths",
    "check_width",
    "clamp",
    "code_range",
    "dequantize",
    "fit_format",
    "from_planes",
    "lincomb",
    "mul_constants",
    "nested_view",
    "plane_words",
    "planes_read",
    "quantize",
    "quantize_constant",
    "quantize_per_channel",
    "quantize_per_tensor",
    "requant_constants",
    "round_div",
    "round_shift",
    "saturate",
    "signed_bits",
    "signed_bits_for_magnitude",
    "signed_range",
    "switch_shifts",
    "to_planes",
    "unsigned_range",
    "view_from_planes",
    "wrap",
]
