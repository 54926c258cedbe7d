"""Verilog and JSON sidecar generation (byte-identical on every run).

``generate(config)`` returns the Verilog text (``amaranth.back.verilog.convert`` with
``emit_src=False``: no source paths, so the output does not depend on the checkout) and
the sidecar: contract version, generator parameters, every port (name, direction, width,
and for stream payloads the bit field of each member), and the tile's timing figures.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from amaranth import Shape
from amaranth.back import verilog
from amaranth.lib import data, wiring

from ..spec import CONTRACT_VERSION, ROUNDING_CODES
from .config import HWConfig
from .scalable import ScalableMACPE
from .tile import Tile

__all__ = ["generate", "write", "port_map", "layout_fields"]

SIDECAR_FORMAT = 1


def layout_fields(shape, prefix: str = "", offset: int = 0) -> list[dict]:
    """Flatten a (nested) data layout into leaf fields: name, bit offset, width, signed."""
    if isinstance(shape, data.StructLayout):
        out = []
        for name, fld in shape:
            path = f"{prefix}.{name}" if prefix else name
            out += layout_fields(fld.shape, path, offset + fld.offset)
        return out
    if isinstance(shape, data.ArrayLayout):
        out = []
        elem = Shape.cast(shape.elem_shape).width
        for i in range(shape.length):
            out += layout_fields(shape.elem_shape, f"{prefix}[{i}]", offset + i * elem)
        return out
    s = Shape.cast(shape)
    return [{"name": prefix, "offset": offset, "width": s.width, "signed": s.signed}]


def port_map(component) -> list[dict]:
    """Top-level ports in signature order, named as in the Verilog (path joined by ``__``)."""
    ports = [
        {"name": "clk", "direction": "input", "width": 1, "signed": False},
        {"name": "rst", "direction": "input", "width": 1, "signed": False},
    ]
    for path, member, value in component.signature.flatten(component):
        shape = member.shape
        cast = Shape.cast(shape)
        port = {
            "name": "__".join(str(p) for p in path),
            "direction": "input" if member.flow == wiring.In else "output",
            "width": cast.width,
            "signed": cast.signed,
        }
        if isinstance(shape, (data.StructLayout, data.ArrayLayout)):
            port["fields"] = layout_fields(shape)
        ports.append(port)
    return ports


def _uses_clock(config: HWConfig) -> bool:
    return config.component in ("pe", "scalable_pe", "array", "tile")


def generate(config: HWConfig) -> tuple[str, dict]:
    """(Verilog text, sidecar dict) of ``config``; raises before producing anything if the
    parameters are refused."""
    comp = config.build()
    params = config.resolved_params(comp)
    text = verilog.convert(comp, name=config.name, emit_src=False)
    ports = port_map(comp)
    if not _uses_clock(config):
        # combinational units: Amaranth adds no clock or reset
        names = set()
        for line in text.splitlines():
            s = line.strip()
            if s.startswith(("input ", "output ")):
                names.add(s.rstrip(";").split()[-1])
        ports = [p for p in ports if p["name"] not in ("clk", "rst") or p["name"] in names]
    sidecar = {
        "format": SIDECAR_FORMAT,
        "contract_version": CONTRACT_VERSION,
        "generator": f"dqt_hw.hw.{type(comp).__name__}",
        "component": config.component,
        "module": config.name,
        "parameters": params,
        "encoding": {
            "width registers": "hold the width b itself (not the shift n - b); a width "
                               "outside 'widths' gives 0",
            "rounding codes": dict(ROUNDING_CODES),
            "clock": "rising edge of clk; rst is synchronous and active high"
                     if _uses_clock(config) else "combinational",
        },
        "ports": ports,
    }
    if isinstance(comp, Tile):
        sidecar["timing"] = {
            "min_period_steps": comp.min_period,
            "latency_cycles": comp.latency,
            "side_sum_width": comp.sum_width,
            "requant_sum_bits": comp.requant_sum_bits,
            "cycles_per_step": {"all width pairs": 1},
        }
        if comp.max_pack > 1:
            pairs = [(ba, bw) for ba in comp.widths for bw in comp.widths]
            sidecar["timing"].update({
                "max_pack": comp.max_pack,
                "pack_factor": {f"{ba}x{bw}": comp.pack_factor(ba, bw) for ba, bw in pairs},
                "cycles_per_element": comp.cycles_per_width_pair(),
                "elements_per_transfer": "act/wgt transfer t of a tile of K elements "
                                         "holds elements p*t .. min(p*t + p, K) - 1 in its "
                                         "slots 0, 1, ... (p = pack_factor of the tile's "
                                         "b_a x b_w; ceil(K / p) transfers per tile; the "
                                         "other slots are padding, any value)",
            })
    if isinstance(comp, ScalableMACPE):
        sidecar["timing"] = {"cycles_per_element": comp.cycles_per_width_pair()}
    return text, sidecar


def _dump(sidecar: dict) -> str:
    return json.dumps(sidecar, indent=2) + "\n"


def write(config: HWConfig, outdir) -> tuple[Path, Path]:
    """Write ``<name>.v`` and ``<name>.json`` into ``outdir`` (created if missing)."""
    text, sidecar = generate(config)
    outdir = Path(outdir)
    os.makedirs(outdir, exist_ok=True)
    vpath = outdir / f"{config.name}.v"
    jpath = outdir / f"{config.name}.json"
    vpath.write_text(text)
    jpath.write_text(_dump(sidecar))
    return vpath, jpath


def render(config: HWConfig) -> dict[str, str]:
    """{file name: content} of ``config``, without writing (for the reproducibility test)."""
    text, sidecar = generate(config)
    return {f"{config.name}.v": text, f"{config.name}.json": _dump(sidecar)}
