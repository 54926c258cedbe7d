"""Deliberate bugs in the tile generators, for the regression's test of itself only.

``sim/test_faults.py`` (``make mutate``) builds the tile with one of these switched on and
asserts that the quick cocotb benches fail on it. Nothing else sets them: with no fault
active (always, outside that test) the generators are unchanged, and so is every
generated file.
"""

from __future__ import annotations

import contextlib

FAULTS = {
    "side_sum_row": "the array's row_sum_a of row i >= 1 is the side sum of row i - 1",
    "full_depth_short": "a full-depth tile (cmd k field 0) ends one element early",
    "widths_step_late": "b_a/b_w come from a register loaded at each transfer: a tile's "
                        "first element is viewed at the previous tile's widths",
    "last_row": "out.last on row R - 1 instead of row M - 1",
    "drop_on_stall": "the out register takes a new row while the old one is still stalled "
                     "(a row dropped under back-pressure)",
    "planes_half_up_short": "the plane reader enables b rows at half_up instead of b + 1 "
                            "(the rounding plane is not read)",
    "rq_ctrl_early": "a pipelined requantizer's row control passes one register rank fewer "
                     "than the lanes' data (a row leaves before its codes)",
    "latency_short": "the tile's latency (the sidecar's latency_cycles) is one cycle short",
}

_active: set[str] = set()


def on(name: str) -> bool:
    """Whether the fault ``name`` is switched on (generators ask this while elaborating)."""
    return name in _active


@contextlib.contextmanager
def inject(name: str):
    """Switch one fault on for the elaborations inside the ``with`` block."""
    if name not in FAULTS:
        raise ValueError(f"dqt_hw/hw/faults.py: unknown fault {name!r} (one of {sorted(FAULTS)})")
    _active.add(name)
    try:
        yield
    finally:
        _active.discard(name)
