"""Verilog and JSON sidecar generation (byte-identical on every run).

``generate(config)`` returns the Verilog text (``amaranth.back.verilog.convert`` with
``emit_src=False``: no source paths, so the output does not depend on the checkout) and
the sidecar: contract version, generator parameters, every port (name, direction, width,
and for stream payloads the bit field of each member), and the tile's timing figures.
"""

from __future__ import annotations

import json

from amaranth import Shape
from amaranth.back import verilog
from amaranth.lib import data, wiring

from ..spec import CONTRACT_VERSION, ROUNDING_CODES
from ..design import Design
from ..design.core import SIDECAR_FORMAT
from .axi import AxiShell, stream_fields
from .config import build
from .plane_tile import PlaneTile
from .planes import PlaneBuffer
from .scalable import ScalableMACPE
from .tile import Tile

__all__ = ["generate", "render", "port_map", "layout_fields"]



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


def generate(design: Design) -> tuple[str, dict]:
    """(Verilog text, sidecar dict) of ``design``; its ``parameters`` are
    ``design.parameters()`` (``Design.from_sidecar`` reads the design back)."""
    comp = build(design)
    text = verilog.convert(comp, name=design.name, emit_src=False)
    ports = port_map(comp)
    # Amaranth adds clk / rst only for a sync domain it creates: not for the combinational
    # units, nor for the AXI shell (aclk / aresetn are its own ports)
    names = set()
    top = text.split(f"module {design.name}(", 1)[1].split("endmodule", 1)[0]
    for line in top.splitlines():
        s = line.strip()
        if s.startswith(("input ", "output ")):
            names.add(s.rstrip(";").split()[-1])
    ports = [p for p in ports if p["name"] not in ("clk", "rst") or p["name"] in names]
    if isinstance(comp, AxiShell):
        _tdata_fields(comp, ports)
    sidecar = {
        "format": SIDECAR_FORMAT,
        "contract_version": CONTRACT_VERSION,
        "generator": f"dqt_hw.hw.{type(comp).__name__}",
        "component": design.component,
        "module": design.name,
        "parameters": design.parameters(),
        "encoding": {
            "width registers": "hold the width b itself (not the shift n - b); a width "
                               "outside 'widths' gives 0",
            "rounding codes": dict(ROUNDING_CODES),
            "clock": _clock_text(design),
        },
        "ports": ports,
    }
    tile = comp.tile if isinstance(comp, (AxiShell, PlaneTile)) else comp
    if isinstance(tile, Tile):
        sidecar["timing"] = {
            "min_period_steps": tile.min_period,
            "latency_cycles": tile.latency,
            "side_sum_width": tile.sum_width,
            "requant_sum_bits": tile.requant_sum_bits,
            "cycles_per_step": {"all width pairs": 1},
        }
        if tile.design.row_cycles > 1:
            sidecar["timing"].update({
                "rq_lanes": tile.design.requant_lanes,
                "cycles_per_row": tile.design.row_cycles,
                "requant_groups": "each out row i < m takes cycles_per_row cycles: the "
                                  "rq_lanes lanes requantize columns g*rq_lanes .. "
                                  "(g+1)*rq_lanes - 1 in the cycle of group g, the whole "
                                  "datapath (inputs included) frozen until the last group; "
                                  "rows of a tile leave cycles_per_row cycles apart",
            })
        if tile.design.rq_stages:
            sidecar["timing"].update({
                "rq_stages": tile.design.rq_stages,
                "requant_pipeline": "each requantizer lane has rq_stages register ranks: an "
                                    "out row leaves rq_stages cycles later than with a "
                                    "combinational lane (latency_cycles counts them); rq is "
                                    "read as a row enters the lanes and taken as row R - 1 "
                                    "enters, so the next tile's rq can be needed before the "
                                    "previous tile's last out transfer",
            })
        if tile.max_pack > 1:
            pairs = [(ba, bw) for ba in tile.widths for bw in tile.widths]
            sidecar["timing"].update({
                "max_pack": tile.max_pack,
                "pack_factor": {f"{ba}x{bw}": tile.pack_factor(ba, bw) for ba, bw in pairs},
                "cycles_per_element": tile.cycles_per_width_pair(),
                "elements_per_transfer": "act/wgt transfer t of a tile of K elements "
                                         "holds elements p*t .. min(p*t + p, K) - 1 in its "
                                         "slots 0, 1, ... (p = pack_factor of the tile's "
                                         "b_a x b_w; ceil(K / p) transfers per tile; the "
                                         "other slots are padding, any value)",
            })
    if isinstance(comp, PlaneTile):
        sidecar["timing"].update(_plane_timing(design))
    if isinstance(comp, PlaneBuffer):
        sidecar["timing"] = {"read_latency_cycles": 1, "rows_read": ROWS_READ}
    if isinstance(comp, ScalableMACPE):
        sidecar["timing"] = {"cycles_per_element": comp.cycles_per_width_pair()}
    if isinstance(comp, AxiShell):
        sidecar["timing"]["input_slice_cycles"] = 1
        sidecar["streams"] = {
            "s_axis_act": "one beat per tile step: tdata = the tile's act payload (fields); "
                          "tlast high on the tile's last beat",
            "s_axis_wgt": "one beat per tile step: tdata = the tile's wgt payload (fields); "
                          "tlast high on the tile's last beat",
            "m_axis_out": "one beat per output row: tdata = the row's codes (fields), "
                          "tuser = the row index, tlast high on row M - 1",
        }
        sidecar["regmap"] = comp.regmap.to_json()
    return text, sidecar


ROWS_READ = ("plane rows a read enables (row j = plane n - 1 - j): b at floor, b + 1 at "
             "half_up (n at b = n), n at half_even / half_away; the others read as 0")


def _plane_timing(design: Design) -> dict:
    """The plane tile's own timing: plane reads per step and per tile, the read stage."""
    return {
        "plane_reads_per_step": {str(b): design.planes_read(b) for b in design.widths},
        "plane_reads_per_tile": f"K x plane_reads_per_step[b] plane words of each operand "
                                f"({design.view_rounding} views; 'reads' port: a and w)",
        "read_latency_cycles": 1,
        "cmd_to_first_step_cycles": 2,
        "width_switch_cycles": 0,
    }


def _clock_text(design: Design) -> str:
    if design.component == "axi":
        return "rising edge of aclk; aresetn is synchronous and active low"
    if design.clocked:
        return "rising edge of clk; rst is synchronous and active high"
    return "combinational"


def _tdata_fields(comp: AxiShell, ports: list[dict]) -> None:
    """The fields of the shell's tdata ports: the tile's payload fields, then ``pad`` up
    to a whole number of bytes (zero on m_axis_out, ignored on the inputs)."""
    layouts = stream_fields(comp.tile)
    for port in ports:
        if port["name"] in layouts:
            fields = layout_fields(layouts[port["name"]])
            used = sum(f["width"] for f in fields)
            if used < port["width"]:
                fields.append({"name": "pad", "offset": used, "width": port["width"] - used,
                               "signed": False})
            port["fields"] = fields


def _dump(sidecar: dict) -> str:
    return json.dumps(sidecar, indent=2) + "\n"


def render(design: Design) -> dict[str, str]:
    """{file name: content} of ``design``: ``<name>.v`` and ``<name>.json``; for an AXI
    shell also its register map as ``<name>_regs.md``, ``<name>_regs.h`` and
    ``<name>.rdl`` (SystemRDL)."""
    text, sidecar = generate(design)
    files = {f"{design.name}.v": text, f"{design.name}.json": _dump(sidecar)}
    if design.component == "axi":
        from .regmap import register_map
        from .regmap_text import render_texts

        files.update(render_texts(register_map(design)))
    return files
