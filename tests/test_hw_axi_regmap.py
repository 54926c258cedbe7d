"""The AXI shell's register map in its text forms: the C header compiles and gives every
offset and field of the map, the SystemRDL text elaborates (systemrdl-compiler) to the
same addresses, and the docs copy of the reference map is current."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dqt_hw.design import Design
from dqt_hw.design.reference import reference
from dqt_hw.hw.regmap import BANKS, register_map
from dqt_hw.hw.regmap_text import c_header, doc_block, systemrdl, update_doc

ROOT = Path(__file__).resolve().parent.parent
DESIGNS = [reference("dqt_axi4x4"),
           Design(component="axi", name="wide_axi", rows=3, cols=5, kbits=40, ebits=7,
                  sbits=8, depth_bits=20, queue_depth=16, signed=True)]


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
@pytest.mark.parametrize("d", DESIGNS, ids=lambda d: d.name)
def test_c_header_compiles_to_the_map(d, tmp_path):
    rm = register_map(d)
    P = d.name.upper()
    (tmp_path / "regs.h").write_text(c_header(rm))
    lines = ['#include <stdio.h>', '#include "regs.h"', "int main(void) {"]
    expect = []
    for r in rm.control():
        lines.append(f'printf("%u\\n", (unsigned){P}_{r.name});')
        expect.append(r.offset)
        for f in r.fields:
            lines.append(f'printf("%u %u\\n", (unsigned){P}_{r.name}_{f.name.upper()}_SHIFT, '
                         f'(unsigned){P}_{r.name}_{f.name.upper()}_MASK);')
            expect.append(f"{f.lsb} {f.mask}")
    for b in range(BANKS):
        for j in range(d.cols):
            for w in rm.lane_words:
                lines.append(f'printf("%u\\n", (unsigned){P}_LANE_{w}({b}, {j}));')
                expect.append(rm.lane_register(b, j, w).offset)
    lines += ["return 0;", "}"]
    (tmp_path / "t.c").write_text("\n".join(lines) + "\n")
    exe = tmp_path / "t"
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-o", str(exe),
                    str(tmp_path / "t.c")], check=True, cwd=tmp_path)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:-1] == [str(e) for e in expect]


@pytest.mark.parametrize("d", DESIGNS, ids=lambda d: d.name)
def test_systemrdl_elaborates_to_the_map(d, tmp_path):
    systemrdl_mod = pytest.importorskip("systemrdl")
    rm = register_map(d)
    path = tmp_path / f"{d.name}.rdl"
    path.write_text(systemrdl(rm))
    rdlc = systemrdl_mod.RDLCompiler()
    rdlc.compile_file(str(path))
    root = rdlc.elaborate()
    got = {}
    for node in root.top.descendants(unroll=True):
        if isinstance(node, systemrdl_mod.node.RegNode):
            fields = {(f.inst_name, f.low, f.width) for f in node.fields()}
            got[node.absolute_address] = (node.get_path(), fields)
    want = {r.offset: {(f.name, f.lsb, f.width) for f in r.fields} for r in rm.registers}
    assert sorted(got) == sorted(want)
    assert all(got[a][1] == want[a] for a in want)
    lane = rm.lane_register(1, d.cols - 1, "S").offset
    assert got[lane][0] == f"{d.name}.BANK1_LANE[{d.cols - 1}].S"


def test_docs_copy_of_the_reference_map_is_current(tmp_path):
    rm = register_map(reference("dqt_axi4x4"))
    assert doc_block(rm) in (ROOT / "docs" / "axi.md").read_text(), \
        "docs/axi.md: the register map is stale, run `make rtl`"
    doc = tmp_path / "a.md"
    doc.write_text("# x\n")
    with pytest.raises(ValueError, match=r"a.md: no generated regmap block of dqt_axi4x4"):
        update_doc(doc, rm)
