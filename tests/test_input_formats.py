"""Input formats from other people (docs/formats.md): every bad document is one ValueError
line naming the file, the field and the value; never a silent wrong figure."""

from __future__ import annotations

import json
import math
import re

import pytest

from dqt_hw.cost.tech import TechTable, load_tech

SHIPPED = json.loads(load_tech().data and (
    __import__("importlib.resources").resources.files("dqt_hw.cost") / "data" /
    "horowitz45.json").read_text())


def _tech(tmp_path, name="t.json", **changes):
    doc = {**SHIPPED, **changes}
    for k in [k for k, v in changes.items() if v is _DROP]:
        del doc[k]
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return str(p)


_DROP = object()


# ------------------------------------------------------------------ technology tables


@pytest.mark.parametrize("changes, message", [
    # NaN, infinity and negative energies: before, a NaN adder energy became 0 pJ
    # (max(0, nan)), a NaN multiplexer a NaN total, a negative DRAM energy a negative total
    ({"int_add_pj": {"8": math.nan, "32": 0.1}}, r"not valid JSON: NaN is not a JSON number"),
    ({"mux2_pj_per_bit": math.inf}, r"not valid JSON: Infinity is not a JSON number"),
    ({"dram_64b_pj": {"low": -1300.0, "high": 2600.0}},
     r"dram_64b_pj\.low: input should be greater than 0, not -1300\.0"),
    ({"mux2_pj_per_bit": 0}, r"mux2_pj_per_bit: input should be greater than 0, not 0"),
    ({"int_mul_pj": {"8": "0.2"}}, r"int_mul_pj\.8: input should be a valid number, not '0\.2'"),
    ({"int_mul_pj": {"8": True}}, r"int_mul_pj\.8: input should be a valid number, not True"),
    ({"int_add_pj": {"8": 0.03, "8.0": 0.04}},
     r"int_add_pj\.8\.0 \(a key\): string should match pattern '\^\[1-9\]\[0-9\]\{0,2\}\$', "
     r"not '8\.0'"),
    ({"int_add_pj": {}}, r"int_add_pj: dictionary should have at least 1 item after "
                         r"validation, not 0 \(value \{\}\)"),
    ({"dram_corner": "typical"}, r"dram_corner: must be one of the corners of dram_64b_pj "
                                 r"\['high', 'low'\], not 'typical'"),
    ({"int_mul_pJ": {"8": 0.2}}, r"unknown key 'int_mul_pJ' \(did you mean 'int_mul_pj'\?\); "
                                 r"known keys: name, .*"),
    ({"int_add_pj": _DROP, "int_mul_pj": _DROP},
     r"lacks the required keys \['int_add_pj', 'int_mul_pj'\]"),
])
def test_bad_technology_table_is_one_line_naming_file_field_value(tmp_path, changes, message):
    path = _tech(tmp_path, **changes)
    with pytest.raises(ValueError) as e:
        load_tech(path)
    text = str(e.value)
    assert "\n" not in text
    assert re.match(rf"^technology table '{re.escape(path)}': {message}", text), text


def test_technology_table_text_level_refusals(tmp_path):
    p = tmp_path / "dup.json"
    p.write_text('{"name": "a", "name": "b"}')
    with pytest.raises(ValueError, match=r"^technology table '.*dup\.json': not valid JSON: "
                                         r"duplicate key 'name'$"):
        load_tech(str(p))
    p = tmp_path / "deep.json"
    p.write_text("[" * 30_000 + "]" * 30_000)
    with pytest.raises(ValueError, match=r"^technology table '.*deep\.json': not valid JSON: "
                                         r"nested too deeply$"):
        load_tech(str(p))
    p = tmp_path / "big.json"
    p.write_text(" " * (1 << 17))
    with pytest.raises(ValueError, match=r"^technology table file '.*big\.json' has 131072 "
                                         r"bytes, more than the 65536 this format allows$"):
        load_tech(str(p))
    p = tmp_path / "bin.json"
    p.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ValueError, match=r"^technology table '.*bin\.json': not UTF-8 text"):
        load_tech(str(p))


def test_technology_table_in_memory_is_checked_too():
    with pytest.raises(ValueError, match=r"^technology table 'x': mux2_pj_per_bit: input "
                                         r"should be a finite number, not nan$"):
        TechTable("x", {**SHIPPED, "mux2_pj_per_bit": math.nan})
    with pytest.raises(ValueError, match=r"^floating-point operation must be 'add' or 'mul', "
                                         r"not 'div'$"):
        load_tech().fp_pj("div")


def test_technology_table_refused_by_cost_leaves_no_output(tmp_path, capsys):
    from dqt_hw.cli import main

    out = tmp_path / "out"
    path = _tech(tmp_path, dram_64b_pj={"low": -1300.0, "high": 2600.0})
    assert main(["cost", "--tech", path, "--no-plots", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert re.match(r"^dqt-hw cost: error: technology table '.*': dram_64b_pj\.low: input "
                    r"should be greater than 0, not -1300\.0\n$", err), err
    assert not out.exists()
