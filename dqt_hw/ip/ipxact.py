"""An IP-XACT (IEEE 1685-2014) component from a design's JSON sidecar.

:func:`component_xml` turns the sidecar that ``dqt-hw rtl`` writes beside each Verilog
file (``rtl/<name>.json``: docs/hardware.md, "The JSON sidecar") into the component
``<name>.xml`` that IP-XACT tools (Kactus2, vendor packagers, register generators) read:

- VLNV ``dqt_hw:dqt_hw:<module>:<version>`` (the FuseSoC core's vendor, library and
  version; ``dqt_hw.ip.component_vlnv``);
- ``model``: one view ``rtl`` whose component instantiation is the Verilog module, and
  every port with its direction and vector ``[width-1:0]``; a port with payload fields
  names them in its description (``k[11:0] b_a[15:12] ...``) and lists them, with
  signedness, in its vendor extensions;
- ``fileSets``: ``rtl`` (the Verilog), ``lint`` (the Verilator waivers ``verilator.vlt``)
  and ``sidecar`` (the JSON sidecar), paths relative to the XML file;
- ``parameters``: the design's parameters (``sidecar["parameters"]``), typed; they
  describe the configuration the Verilog was generated for (the module has no Verilog
  parameters: another configuration is another generation);
- ``busInterfaces``, when ports follow the AXI naming rule (:func:`bus_interfaces`):
  ``s_axis_*`` / ``m_axis_*`` are AMBA4 AXI4-Stream slave / master interfaces,
  ``s_axil_*`` / ``m_axil_*`` AMBA4 AXI4-Lite ones (ARM's bus and abstraction VLNVs,
  :data:`BUSES`);
- ``memoryMaps``, when the sidecar has a ``registers`` list (:class:`RegisterSpec`): one
  memory map ``registers`` with one address block, referenced by the AXI4-Lite slave;
- vendor extensions (namespace :data:`EXT_NS`): the sidecar's ``encoding`` and
  ``timing`` tables, the generator and the contract version.

The text is deterministic (same sidecar, same bytes). :mod:`dqt_hw.ip.xsd` validates it
against the standard's schema.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from ..schema import Strict, validate
from . import component_vlnv

__all__ = ["NS", "EXT_NS", "BUSES", "RegisterSpec", "FieldSpec", "component_xml",
           "bus_interfaces", "read_registers", "register_map_schema", "Interface"]

NS = "http://www.accellera.org/XMLSchema/IPXACT/1685-2014"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
EXT_NS = "urn:dqt_hw:ipxact:1"
"""Namespace of this project's vendor extensions."""
SCHEMA_LOCATION = f"{NS} {NS}/index.xsd"

ET.register_namespace("ipxact", NS)
ET.register_namespace("xsi", XSI_NS)
ET.register_namespace("dqt", EXT_NS)


# ----------------------------------------------------------------------------- buses


@dataclass(frozen=True)
class BusDef:
    """An AMBA bus: its bus and abstraction definition VLNVs, its logical signals (the
    port-name suffix, lower case, is the logical name in lower case), the signals an
    initiator (master) drives, and those an interface must have."""

    label: str
    bus: tuple[str, str, str, str]
    abstraction: tuple[str, str, str, str]
    signals: tuple[str, ...]
    from_master: frozenset
    required: tuple[str, ...]


_AXIS = ("tdata", "tvalid", "tready", "tlast", "tkeep", "tstrb", "tuser", "tid", "tdest",
         "twakeup")
_AXIL = ("awaddr", "awprot", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready",
         "bresp", "bvalid", "bready", "araddr", "arprot", "arvalid", "arready", "rdata",
         "rresp", "rvalid", "rready")
CLOCK, RESET = "aclk", "aresetn"
LOGICAL = {CLOCK: "ACLK", RESET: "ARESETn"}

BUSES = {
    "axis": BusDef("AXI4-Stream", ("amba.com", "AMBA4", "AXI4Stream", "r0p0_1"),
                   ("amba.com", "AMBA4", "AXI4Stream_rtl", "r0p0_1"), _AXIS,
                   frozenset(_AXIS) - {"tready"}, ("tvalid",)),
    "axil": BusDef("AXI4-Lite", ("amba.com", "AMBA4", "AXI4-Lite", "r0p0_0"),
                   ("amba.com", "AMBA4", "AXI4-Lite_rtl", "r0p0_0"), _AXIL,
                   frozenset({"awaddr", "awprot", "awvalid", "wdata", "wstrb", "wvalid",
                              "bready", "araddr", "arprot", "arvalid", "rready"}),
                   tuple(s for s in _AXIL if not s.endswith(("prot", "strb")))),
}
"""The AMBA4 buses a port name can join, by the prefix's bus part."""

PREFIXES = {"s_axis": ("axis", "slave"), "m_axis": ("axis", "master"),
            "s_axil": ("axil", "slave"), "m_axil": ("axil", "master")}
"""Port-name prefix -> (bus, interface mode)."""


@dataclass
class Interface:
    """One bus interface: its name (the port-name prefix, e.g. ``s_axis_act``), bus,
    mode, and {logical signal (lower case): physical port}."""

    name: str
    bus: str
    mode: str
    ports: dict


def _split(name: str):
    """(interface name, bus, mode, signal) of an AXI port name, or None."""
    for prefix, (bus, mode) in PREFIXES.items():
        if not name.startswith(prefix + "_"):
            continue
        rest = name[len(prefix) + 1:]
        for sig in BUSES[bus].signals + (CLOCK, RESET):
            if rest == sig:
                return prefix, bus, mode, sig
            if rest.endswith("_" + sig) and len(rest) > len(sig) + 1:
                return f"{prefix}_{rest[:-len(sig) - 1]}", bus, mode, sig
        known = ", ".join(BUSES[bus].signals)
        raise ValueError(f"port {name!r} starts with {prefix + '_'!r} but does not end in "
                         f"an {BUSES[bus].label} signal ({known}, {CLOCK}, {RESET})")
    return None


def bus_interfaces(ports, *, source: str = "sidecar") -> list[Interface]:
    """The AXI interfaces of ``ports`` (the sidecar's list), in order of first port.

    A port ``<prefix>[_<name>]_<signal>`` with prefix ``s_axis``, ``m_axis``, ``s_axil``
    or ``m_axil`` joins interface ``<prefix>[_<name>]``; ``signal`` is the AMBA signal in
    lower case (``tdata``, ``awaddr``, ...). Ports named ``aclk`` and ``aresetn`` (or
    ``<interface>_aclk``, ``<interface>_aresetn``) are each interface's ACLK and ARESETn.
    Refused (ValueError): an unknown signal after an AXI prefix, a signal twice, a
    direction that does not fit the mode, an interface without its required signals."""
    by_name = {p["name"]: p for p in ports}
    out: dict[str, Interface] = {}
    for p in ports:
        split = _split(p["name"])
        if split is None:
            continue
        iname, bus, mode, sig = split
        itf = out.setdefault(iname, Interface(iname, bus, mode, {}))
        if sig in itf.ports:
            raise ValueError(f"{source}: interface {iname!r} has {sig} twice: "
                             f"{itf.ports[sig]!r} and {p['name']!r}")
        itf.ports[sig] = p["name"]
    for itf in out.values():
        bd = BUSES[itf.bus]
        for sig in (CLOCK, RESET):
            if sig not in itf.ports and sig in by_name:
                itf.ports[sig] = sig
        missing = [s for s in bd.required if s not in itf.ports]
        if missing:
            raise ValueError(f"{source}: {bd.label} interface {itf.name!r} lacks the "
                             f"signals {missing}")
        for sig, pname in itf.ports.items():
            drives = sig in bd.from_master
            want = "input" if sig in (CLOCK, RESET) or drives == (itf.mode == "slave") \
                else "output"
            got = by_name[pname]["direction"]
            if got != want:
                raise ValueError(f"{source}: port {pname!r} is an {got}, but {sig} of the "
                                 f"{itf.mode} interface {itf.name!r} is an {want}")
    return list(out.values())


# ----------------------------------------------------------------------------- registers

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]
Access = Literal["rw", "ro", "wo", "read-write", "read-only", "write-only",
                 "read-writeOnce", "writeOnce"]
ACCESS = {"rw": "read-write", "ro": "read-only", "wo": "write-only"}
"""Short access names and the IP-XACT ones they stand for."""


class FieldSpec(Strict):
    """A bit field of a register: ``offset`` and ``width`` in bits; ``access`` defaults
    to the register's."""

    name: Identifier
    offset: Annotated[int, Field(ge=0, le=63)]
    width: Annotated[int, Field(ge=1, le=64)]
    access: Access | None = None
    reset: Annotated[int, Field(ge=0)] | None = None
    description: Annotated[str, Field(max_length=1000)] | None = None
    modified_write: Literal["oneToClear", "oneToSet"] | None = None


class RegisterSpec(Strict):
    """A register of the sidecar's ``registers`` list: ``offset`` in bytes from the
    block's base (a multiple of width / 8), ``width`` in bits, ``fields`` (none: one field
    ``value`` of the whole width)."""

    name: Identifier
    offset: Annotated[int, Field(ge=0, lt=1 << 32)]
    width: Literal[8, 16, 32, 64]
    access: Access
    fields: Annotated[list[FieldSpec], Field(max_length=64)] = []
    reset: Annotated[int, Field(ge=0)] | None = None
    description: Annotated[str, Field(max_length=1000)] | None = None


RegisterList = Annotated[list[RegisterSpec], Field(min_length=1, max_length=4096)]


class _Registers(Strict):
    registers: RegisterList

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


def register_map_schema() -> dict:
    """The JSON Schema of a sidecar's ``registers`` list (``schemas/register-map``)."""
    from pydantic import TypeAdapter

    return {"title": "dqt_hw register map (a sidecar's registers list; docs/ip.md)",
            **TypeAdapter(RegisterList).json_schema()}


def read_registers(sidecar: dict, *, source: str = "sidecar") -> list[RegisterSpec]:
    """The sidecar's ``registers`` list checked (empty when it has none): the shape of
    :class:`RegisterSpec`, then distinct names, aligned offsets, fields inside their
    register and apart, registers apart, resets that fit; else one ValueError line."""
    if "regmap" in sidecar:
        if "registers" in sidecar:
            raise ValueError(f"{source}: has both 'regmap' (an AXI shell's register map) and "
                             f"'registers'; a sidecar gives one")
        sidecar = {"registers": _from_regmap(sidecar["regmap"], source)}
    if "registers" not in sidecar:
        return []
    regs = validate(_Registers, {"registers": sidecar["registers"]}, source=source).registers
    seen, spans = {}, []
    for i, r in enumerate(regs):
        where = f"{source}: registers[{i}] ({r.name})"
        if r.name in seen:
            raise ValueError(f"{where}: the name is used by registers[{seen[r.name]}] too")
        seen[r.name] = i
        nbytes = r.width // 8
        if r.offset % nbytes:
            raise ValueError(f"{where}: offset {r.offset} is not a multiple of {nbytes} "
                             f"(its width, {r.width} bits, in bytes)")
        spans.append((r.offset, r.offset + nbytes, i))
        _check_fields(r, where)
    spans.sort()
    for (a0, a1, i), (b0, _, j) in zip(spans, spans[1:]):
        if b0 < a1:
            raise ValueError(f"{source}: registers[{j}] ({regs[j].name}) at byte {b0} "
                             f"overlaps registers[{i}] ({regs[i].name}), bytes {a0}..{a1 - 1}")
    return list(regs)


_REGMAP_ACCESS = {"ro": ("ro", None), "rw": ("rw", None), "w1c": ("rw", "oneToClear"),
                  "w1p": ("wo", None)}
"""The AXI shell's field access kinds (dqt_hw/hw/regmap.py) in IP-XACT terms: a sticky
bit cleared by writing 1 is read-write with modifiedWriteValue oneToClear; a pulse (write
1 to act, reads 0) is write-only."""


def _from_regmap(regmap, source: str) -> list[dict]:
    """The ``registers`` list of an AXI shell's register map (the sidecar's ``regmap``,
    checked by :class:`dqt_hw.design.core.RegMap`), the one source of its registers."""
    from ..design.core import RegMap

    rm = validate(RegMap, regmap, source=f"{source}: regmap")
    out = []
    for r in rm.registers:
        fields = []
        for f in r.fields:
            access, mod = _REGMAP_ACCESS[f.access]
            fd = {"name": f.name, "offset": f.lsb, "width": f.width, "access": access,
                  "description": f.doc}
            if mod:
                fd["modified_write"] = mod
            if f.value == "const" and f.const is not None:
                fd["reset"] = f.const
            fields.append(fd)
        kinds = {fd["access"] for fd in fields}
        out.append({"name": r.name, "offset": r.offset, "width": rm.data_width,
                    "access": kinds.pop() if len(kinds) == 1 else "rw", "fields": fields,
                    "description": r.doc})
    return out


def _check_fields(r: RegisterSpec, where: str) -> None:
    if r.reset is not None and r.reset >> r.width:
        raise ValueError(f"{where}: reset {r.reset} does not fit {r.width} bits")
    names, used = set(), 0
    for f in r.fields:
        if f.offset + f.width > r.width:
            raise ValueError(f"{where}: field {f.name} (bits {f.offset}..{f.offset + f.width - 1})"
                             f" does not fit the {r.width}-bit register")
        mask = ((1 << f.width) - 1) << f.offset
        if f.name in names or mask & used:
            raise ValueError(f"{where}: field {f.name} repeats a name or overlaps another "
                             f"field")
        if f.reset is not None and f.reset >> f.width:
            raise ValueError(f"{where}: field {f.name}: reset {f.reset} does not fit "
                             f"{f.width} bits")
        names.add(f.name)
        used |= mask


# ----------------------------------------------------------------------------- the sidecar

_OPEN = ConfigDict(strict=True, extra="ignore", frozen=True)  # other keys: read as written


class _PortField(Strict):
    model_config = _OPEN
    name: Annotated[str, Field(min_length=1, max_length=200)]
    offset: Annotated[int, Field(ge=0)]
    width: Annotated[int, Field(ge=1)]
    signed: bool = False


class _Port(Strict):
    model_config = _OPEN
    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_$]*$", max_length=200)]
    direction: Literal["input", "output", "inout"]
    width: Annotated[int, Field(ge=1, le=1 << 20)]
    signed: bool = False
    fields: list[_PortField] = []


class _Sidecar(Strict):
    """What the writer reads of a sidecar (docs/hardware.md, "The JSON sidecar")."""

    model_config = _OPEN
    module: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_$]*$", max_length=200)]
    ports: Annotated[list[_Port], Field(min_length=1)]
    parameters: dict[Identifier, bool | int | str
                      | Annotated[list[int], Field(min_length=1, max_length=4096)]] = {}


# ----------------------------------------------------------------------------- XML


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _sub(parent, tag: str, text=None, **attrs):
    el = ET.SubElement(parent, _q(tag), {k: str(v) for k, v in attrs.items()})
    if text is not None:
        el.text = str(text)
    return el


def _vlnv_attrs(vlnv) -> dict:
    return dict(zip(("vendor", "library", "name", "version"), vlnv))


def _vector(parent, width: int, tag: str = "vectors") -> None:
    vs = _sub(parent, tag)
    v = _sub(vs, tag[:-1])
    _sub(v, "left", width - 1)
    _sub(v, "right", 0)


def _ext(parent, tag: str, value):
    """``value`` (a scalar or a table) as an element of the vendor-extension namespace:
    a table's entries as ``<dqt:entry key="...">``."""
    el = ET.SubElement(parent, f"{{{EXT_NS}}}{tag}")
    if isinstance(value, dict):
        for k, v in value.items():
            _ext(el, "entry", v).set("key", str(k))
    elif isinstance(value, bool):
        el.text = "true" if value else "false"
    else:
        el.text = str(value)
    return el


def _fields_text(fields) -> str:
    return " ".join(f"{f['name']}[{f['offset'] + f['width'] - 1}:{f['offset']}]"
                    + (" signed" if f.get("signed") else "") for f in fields)


def _ports(model, ports) -> None:
    el = _sub(model, "ports")
    for p in ports:
        port = _sub(el, "port")
        _sub(port, "name", p["name"])
        desc = "signed" if p.get("signed") else ""
        if p.get("fields"):
            desc = (desc + "; " if desc else "") + "fields: " + _fields_text(p["fields"])
        if desc:
            _sub(port, "description", desc)
        wire = _sub(port, "wire")
        _sub(wire, "direction", {"input": "in", "output": "out", "inout": "inout"}[p["direction"]])
        if p["width"] > 1:
            _vector(wire, p["width"])
        if p.get("fields"):
            ve = _sub(port, "vendorExtensions")
            fl = ET.SubElement(ve, f"{{{EXT_NS}}}fields")
            for f in p["fields"]:
                ET.SubElement(fl, f"{{{EXT_NS}}}field", {
                    "name": f["name"], "offset": str(f["offset"]), "width": str(f["width"]),
                    "signed": "true" if f.get("signed") else "false"})


def _model(root, module: str, ports) -> None:
    model = _sub(root, "model")
    view = _sub(_sub(model, "views"), "view")
    _sub(view, "name", "rtl")
    _sub(view, "componentInstantiationRef", "verilog_rtl")
    inst = _sub(_sub(model, "instantiations"), "componentInstantiation")
    _sub(inst, "name", "verilog_rtl")
    _sub(inst, "language", "verilog")
    _sub(inst, "moduleName", module)
    _sub(_sub(inst, "fileSetRef"), "localName", "rtl")
    _ports(model, ports)


def _bus_interfaces(root, interfaces, regs) -> None:
    if not interfaces:
        return
    lite_slaves = [i.name for i in interfaces if i.bus == "axil" and i.mode == "slave"]
    if regs and len(lite_slaves) > 1:
        raise ValueError(f"the register map needs one AXI4-Lite slave interface, not "
                         f"{len(lite_slaves)} ({lite_slaves})")
    el = _sub(root, "busInterfaces")
    for itf in interfaces:
        bd = BUSES[itf.bus]
        bi = _sub(el, "busInterface")
        _sub(bi, "name", itf.name)
        _sub(bi, "busType", **_vlnv_attrs(bd.bus))
        at = _sub(_sub(bi, "abstractionTypes"), "abstractionType")
        _sub(at, "abstractionRef", **_vlnv_attrs(bd.abstraction))
        pms = _sub(at, "portMaps")
        for sig, pname in itf.ports.items():
            pm = _sub(pms, "portMap")
            _sub(_sub(pm, "logicalPort"), "name", LOGICAL.get(sig, sig.upper()))
            _sub(_sub(pm, "physicalPort"), "name", pname)
        mode = _sub(bi, itf.mode)
        if regs and itf.name in lite_slaves:
            _sub(mode, "memoryMapRef", memoryMapRef="registers")


def _memory_maps(root, regs) -> None:
    if not regs:
        return
    mm = _sub(_sub(root, "memoryMaps"), "memoryMap")
    _sub(mm, "name", "registers")
    blk = _sub(mm, "addressBlock")
    _sub(blk, "name", "registers")
    _sub(blk, "baseAddress", 0)
    _sub(blk, "range", max(r.offset + r.width // 8 for r in regs))
    _sub(blk, "width", max(r.width for r in regs))
    _sub(blk, "usage", "register")
    for r in sorted(regs, key=lambda r: r.offset):
        reg = _sub(blk, "register")
        _sub(reg, "name", r.name)
        if r.description:
            _sub(reg, "description", r.description)
        _sub(reg, "addressOffset", f"'h{r.offset:x}")
        _sub(reg, "size", r.width)
        access = ACCESS.get(r.access, r.access)
        _sub(reg, "access", access)
        fields = r.fields or [FieldSpec(name="value", offset=0, width=r.width, reset=r.reset)]
        for f in fields:
            fe = _sub(reg, "field")
            _sub(fe, "name", f.name)
            if f.description:
                _sub(fe, "description", f.description)
            _sub(fe, "bitOffset", f.offset)
            reset = f.reset
            if reset is None and r.reset is not None:
                reset = (r.reset >> f.offset) & ((1 << f.width) - 1)
            if reset is not None:
                _sub(_sub(_sub(fe, "resets"), "reset"), "value", f"'h{reset:x}")
            _sub(fe, "bitWidth", f.width)
            _sub(fe, "access", ACCESS.get(f.access, f.access) if f.access else access)
            if f.modified_write:
                _sub(fe, "modifiedWriteValue", f.modified_write)
    _sub(mm, "addressUnitBits", 8)


def _parameter(parent, name: str, value) -> None:
    if isinstance(value, bool):
        kind, text = "bit", "1" if value else "0"
    elif isinstance(value, int):
        kind, text = "longint", str(value)
    elif isinstance(value, str):
        kind, text = "string", '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    elif isinstance(value, list) and value and all(type(v) is int for v in value):
        kind, text = "longint", "'{" + ", ".join(map(str, value)) + "}"
    else:
        raise ValueError(f"parameter {name!r}: a value of type {type(value).__name__} has "
                         f"no IP-XACT form ({value!r})")
    p = _sub(parent, "parameter", parameterId=f"param_{name}", resolve="immediate", type=kind)
    _sub(p, "name", name)
    if isinstance(value, list):
        _vector(p, len(value), "arrays")
    _sub(p, "value", text)


def _file(fs, name: str, kind: str, user: str | None = None, description: str = "") -> None:
    f = _sub(fs, "file")
    _sub(f, "name", name)
    if user:
        _sub(f, "fileType", kind, user=user)
    else:
        _sub(f, "fileType", kind)
    if description:
        _sub(f, "description", description)


def _file_sets(root, module: str) -> None:
    sets = _sub(root, "fileSets")
    for name, files in (
        ("rtl", [(f"{module}.v", "verilogSource", None,
                  "the whole hierarchy; submodules are named <module>.<part>")]),
        ("lint", [("verilator.vlt", "user", "verilatorConfigFile",
                   "Verilator lint waivers of the generated Verilog")]),
        ("sidecar", [(f"{module}.json", "user", "json",
                      "dqt_hw sidecar: parameters, ports with payload fields, timing")]),
    ):
        fs = _sub(sets, "fileSet")
        _sub(fs, "name", name)
        for args in files:
            _file(fs, *args)


_SIDE_KEYS = ("generator", "contract_version", "encoding", "timing")


def component_xml(sidecar: dict, *, source: str = "sidecar") -> str:
    """The IP-XACT 1685-2014 component of the design ``sidecar`` describes (module
    ``<module>.v`` beside the XML), as text. One ValueError line (naming ``source``) for
    a sidecar without a module name or ports, a malformed port, a bad AXI port set or
    register map."""
    if not isinstance(sidecar, dict):
        raise ValueError(f"{source}: a sidecar must be a JSON object, not "
                         f"{type(sidecar).__name__}")
    validate(_Sidecar, sidecar, source=source)
    module, ports = sidecar["module"], sidecar["ports"]
    names = [p["name"] for p in ports]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{source}: ports named more than once: {twice}")
    regs = read_registers(sidecar, source=source)
    interfaces = bus_interfaces(ports, source=source)
    root = ET.Element(_q("component"), {f"{{{XSI_NS}}}schemaLocation": SCHEMA_LOCATION})
    for tag, text in zip(("vendor", "library", "name", "version"), component_vlnv(module)):
        _sub(root, tag, text)
    _bus_interfaces(root, interfaces, regs)
    _memory_maps(root, regs)
    _model(root, module, ports)
    _file_sets(root, module)
    comp = sidecar.get("component", "design")
    _sub(root, "description", f"dqt_hw {comp} {module}, generated by "
                              f"{sidecar.get('generator', 'dqt_hw')} (docs/hardware.md; "
                              f"the port protocol: docs/hardware.md, 'Port protocol')")
    params = sidecar.get("parameters") or {}
    if params:
        pel = _sub(root, "parameters")
        for k, v in params.items():
            _parameter(pel, k, v)
    extensions = [k for k in _SIDE_KEYS if k in sidecar]
    if extensions:
        ve = _sub(root, "vendorExtensions")
        for key in extensions:
            _ext(ve, key.replace("_", "-"), sidecar[key])
    ET.indent(root, space="  ")
    text = ET.tostring(root, "unicode")
    bad = _NOT_XML.search(text)
    if bad:
        raise ValueError(f"{source}: a text holds the character U+{ord(bad.group()):04X}, "
                         f"which XML 1.0 cannot carry")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n"


_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""A character an XML 1.0 document cannot hold (ElementTree writes it unchecked)."""
