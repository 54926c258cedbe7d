"""The reference designs: the configurations whose Verilog and sidecars are checked in
under ``rtl/`` (``make rtl``), synthesized for the area model, and the baseline the cost
models compare the shift against (plain data: no Amaranth)."""

from __future__ import annotations

from .core import Design

__all__ = ["REFERENCE_DESIGNS", "baseline_rescale", "reference"]

REFERENCE_DESIGNS = (
    Design(component="view", name="dqt_view_floor", n=8, view_rounding="floor"),
    Design(component="view", name="dqt_view", n=8, view_rounding="half_up"),
    Design(component="pe", name="dqt_pe", n=8, acc_width=32, overflow="wrap",
           view_rounding="floor"),
    Design(component="scalable_pe", name="dqt_pe_scalable", n=8, acc_width=32,
           overflow="wrap", max_pack=4),
    Design(component="array", name="dqt_array4x4", rows=4, cols=4, n=8, acc_width=32),
    Design(component="tile", name="dqt_tile8x8_w32", rows=8, cols=8, n=8, acc_width=32,
           overflow="wrap"),
    Design(component="tile", name="dqt_tile8x8_w18_sat", rows=8, cols=8, n=8, acc_width=18,
           overflow="saturate"),
    Design(component="rescale", name="dqt_rescale", n=8, rounding="half_up", mult_bits=16,
           sbits=5),
    Design(component="tile", name="dqt_tile4x4_pack4", rows=4, cols=4, n=8, acc_width=32,
           overflow="wrap", max_pack=4),
    Design(component="axi", name="dqt_axi4x4", rows=4, cols=4, n=8, acc_width=32,
           overflow="wrap", queue_depth=4),
    # bit-plane storage: the plane buffer of a 4 x 4 tile (64 steps) and that tile run
    # from it, half_up views (b + 1 planes read)
    Design(component="planes", name="dqt_planes4x4", rows=4, cols=4, n=8, depth_bits=6),
    Design(component="plane_tile", name="dqt_plane_tile4x4", rows=4, cols=4, n=8,
           acc_width=32, overflow="wrap", view_rounding="half_up", depth_bits=6),
)
"""The designs checked in under rtl/ (``dqt-hw rtl --reference rtl``)."""


def reference(name: str) -> Design:
    """The reference design named ``name`` (e.g. ``dqt_tile8x8_w32``)."""
    for d in REFERENCE_DESIGNS:
        if d.name == name:
            return d
    raise ValueError(f"no reference design {name!r} (known: "
                     f"{', '.join(d.name for d in REFERENCE_DESIGNS)})")


def baseline_rescale(n: int) -> Design:
    """The multiplier-based rescale unit that non-nested dynamic quantization needs, as the
    reference ``dqt_rescale`` builds it, at master width ``n``."""
    r = reference("dqt_rescale")
    return Design(component="rescale", name=r.name, n=n, rounding=r.rounding,
                  mult_bits=r.mult_bits, sbits=r.sbits)
