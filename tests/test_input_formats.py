"""Input formats from other people (docs/formats.md): every bad document is one ValueError
line naming the file, the field and the value; never a silent wrong figure."""

from __future__ import annotations

import json
import math
import re
from importlib import resources

import pytest

from dqt_hw.cost.tech import TechTable, load_tech

SHIPPED = json.loads((resources.files("dqt_hw.cost") / "data" / "horowitz45.json").read_text())


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
    assert main(["cost", "--tech", path, "--no-plots", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert re.match(r"^dqt-hw cost: error: technology table '.*': dram_64b_pj\.low: input "
                    r"should be greater than 0, not -1300\.0\n$", err), err
    assert not out.exists()


# ------------------------------------------------------------------ sweep grids

TINY_NET = {"name": "tiny", "nodes": [
    {"name": "input", "op": "input", "shape": [4, 5, 5]},
    {"name": "c1", "op": "conv", "inputs": ["input"], "out_channels": 4, "kernel": 3,
     "padding": 1}]}


@pytest.fixture
def grid_doc(tmp_path):
    net = tmp_path / "tiny.json"
    net.write_text(json.dumps(TINY_NET))
    return {"network": [str(net)], "layer": ["c1"], "acc_width": [20], "overflow": ["wrap"],
            "mix": ["4x4"], "rows": [2], "cols": [2], "tech": ["horowitz45"]}


@pytest.mark.parametrize("changes, message", [
    # before: an unknown key was silently carried into every point and ignored
    ({"nework": ["x"]}, r"unknown key 'nework' \(did you mean 'network'\?\); known keys: "),
    ({"acc_width": [20.9]}, r"acc_width\[0\]: input should be a valid integer, not 20\.9"),
    ({"acc_width": [True]}, r"acc_width\[0\]: input should be a valid integer, not True"),
    ({"acc_width": [100]}, r"acc_width\[0\]: input should be less than or equal to 64, "
                           r"not 100"),
    ({"overflow": ["trap"]}, r"overflow\[0\]: input should be 'wrap' or 'saturate', "
                             r"not 'trap'"),
    ({"rows": 2}, r"rows: input should be a valid list, not 2"),
    ({"seed": [-1]}, r"seed\[0\]: input should be greater than or equal to 0, not -1"),
    ({"acc_width": list(range(2, 65)), "rows": list(range(1, 65)), "cols": list(range(1, 65))},
     r"63 acc_width x 64 rows x 64 cols make 258048 points, more than the 100000 a sweep "
     r"takes"),
])
def test_bad_sweep_grid_is_one_line(tmp_path, grid_doc, changes, message):
    from dqt_hw.sweep import load_grid

    p = tmp_path / "grid.json"
    p.write_text(json.dumps({**grid_doc, **changes}))
    with pytest.raises(ValueError) as e:
        load_grid(p)
    assert re.match(rf"^sweep grid '{re.escape(str(p))}': {message}", str(e.value)), e.value
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("changes, message", [
    ({"layer": ["c11"]}, r"layer: 'c11': tiny has no conv/fc layer 'c11' \(did you mean 'c1'\?\)$"),
    ({"tech": ["tsmc3"]}, r"tech: 'tsmc3': unknown technology table 'tsmc3'"),
    ({"mix": ["16x16"]}, r"mix: '16x16': width 16 in widths \(16,\) is outside \[1, 8\]"),
    ({"mix": ["4y4"]}, r"mix: '4y4': cannot read the width pair '4y4'"),
    ({"network": ["vgg99"]}, r"network: 'vgg99': unknown network 'vgg99'"),
])
def test_sweep_grid_values_checked_before_any_point(grid_doc, changes, message):
    from dqt_hw.sweep import check_grid, check_grid_values

    g = check_grid({**grid_doc, **changes})
    with pytest.raises(ValueError, match=rf"^sweep grid: {message}"):
        check_grid_values(g)


@pytest.mark.parametrize("args, message", [
    # before: --workers 0 meant every CPU
    (["--workers", "0"], r"argument --workers: must be an integer >= 1, not '0'"),
    (["--workers", "2.5"], r"argument --workers: must be an integer >= 1, not '2\.5'"),
    (["--max-overflow-rate", "nan"],
     r"argument --max-overflow-rate: must be a number in \[0, 1\], not 'nan'"),
    (["--spatial", "-3"], r"argument --spatial: must be an integer in \[1, 4096\], not '-3'"),
])
def test_sweep_count_options(tmp_path, capsys, args, message):
    from dqt_hw.cli import main

    with pytest.raises(SystemExit) as e:
        main(["sweep", "--out", str(tmp_path / "o"), *args])
    assert e.value.code == 2
    assert re.search(rf"^dqt-hw sweep: error: {message}$", capsys.readouterr().err, re.M)
    assert not (tmp_path / "o").exists()


def test_run_sweep_refuses_zero_workers(tmp_path):
    from dqt_hw.sweep import run_sweep

    with pytest.raises(ValueError, match=r"^workers must be a positive integer \(None: the "
                                         r"CPU count\), not 0$"):
        run_sweep([], tmp_path / "o", workers=0)
    assert not (tmp_path / "o").exists()


def test_bad_sweep_grid_leaves_no_output(tmp_path, grid_doc, capsys):
    from dqt_hw.cli import main

    p = tmp_path / "grid.json"
    p.write_text(json.dumps({**grid_doc, "layer": ["c1", "c9"]}))
    out = tmp_path / "out"
    assert main(["sweep", "--grid", str(p), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert re.match(r"^dqt-hw sweep: error: sweep grid '.*grid\.json': layer: 'c9': tiny has "
                    r"no conv/fc layer 'c9'", err), err
    assert not out.exists()


# ------------------------------------------------------------------ per-input widths


@pytest.fixture(scope="module")
def r18():
    from dqt_hw.cost.workload import load_network

    return load_network("resnet18_cifar10")


def _npy(tmp_path, arr, name="w.npy"):
    import numpy as np

    p = tmp_path / name
    np.save(p, arr)
    return p


def test_per_input_widths_checked_like_static_ones(tmp_path, r18):
    import numpy as np

    from dqt_hw.cost.workload import DynamicWidths, WidthMix
    from dqt_hw.cost.energy import network_energy
    from dqt_hw.design import Design

    tile = Design()  # n = 8
    # the static mix 16x16 is refused on an n = 8 tile ...
    with pytest.raises(ValueError, match=r"^b_a = 16 is not a width the tile supports "
                                         r"\(1, 2, 3, 4, 5, 6, 7, 8\)$"):
        network_energy(r18, tile, WidthMix.parse("16x16"))
    # ... and so are per-input widths 16x16 (before: accepted)
    p = _npy(tmp_path, np.full((2, 21, 2), 16))
    with pytest.raises(ValueError, match=rf"^per-input widths file '{re.escape(str(p))}': "
                                         r"per-input widths, input 0, layer 'conv1': b_a = 16 "
                                         r"is not a width the tile supports \(1, 2, 3, 4, 5, "
                                         r"6, 7, 8\)$"):
        DynamicWidths.load(p, r18, tile=tile)
    # 4.7 is refused, not truncated to 4 (before: 4)
    p = _npy(tmp_path, np.full((2, 21, 2), 4.7))
    with pytest.raises(ValueError, match=r"^per-input widths file '.*w\.npy': dtype: input "
                                         r"should be 'int8', .* not 'float64'$"):
        DynamicWidths.load(p, r18)
    with pytest.raises(TypeError, match=r"^per-input widths must be integers, not float64 "
                                        r"\(a fraction is never truncated\)$"):
        DynamicWidths(tuple(range(21)), np.full((2, 21, 2), 4.7))
    w = np.full((3, 21, 2), 4)
    w[2, 5] = (4, 17)
    with pytest.raises(ValueError, match=r"^per-input widths, input 2, layer 5: b_w must be "
                                         r"a width in \[1, 16\], not 17$"):
        DynamicWidths(tuple(range(21)), w)


@pytest.mark.parametrize("text, message", [
    ("input,layer,b_a,b_w\n0,conv1,4.7,4\n", r", line 2: b_a: b_a must be an integer width, "
                                             r"not '4\.7' \(value '4\.7'\)$"),
    ("input,layer,b_a,b_w\n0,conv1,17,4\n", r", line 2: b_a: b_a must be a width in \[1, 16\], "
                                            r"not 17 \(value '17'\)$"),
    ("input,layer,b_act,b_w\n0,conv1,4,4\n", r", line 2: unknown key 'b_act' \(did you mean "
                                             r"'b_a'\?\); known keys: input, layer, b_a, b_w"),
    ("input,layer,b_a\n0,conv1,4\n", r", line 2: lacks the required keys \['b_w'\]$"),
    ("input,layer,b_a,b_w\n0,conv1,4,4,9\n", r", line 2: 5 cells, the header has 4$"),
    ("input,layer,b_a,b_w\n0,conv9,4,4\n", r", line 2: layer: resnet18_cifar10 has no conv/fc "
                                           r"layer 'conv9' \(did you mean 'conv1'\?\)$"),
    ("input,layer,b_a,b_w\n0,conv1,4,4\n0,conv1,8,8\n",
     r", line 3: a second row for input '0' at layer 'conv1'$"),
    ("input,input,b_a,b_w\n", r": the header repeats the columns \['input'\]$"),
    ("input,layer,b_a,b_w\n", r": no rows; the CSV needs the columns input, layer, b_a, b_w$"),
    ('input,layer,b_a,b_w\n0,"conv1,4,4\n', r": not a valid CSV file: "),
])
def test_bad_per_input_csv_is_one_line(tmp_path, r18, text, message):
    from dqt_hw.cost.workload import DynamicWidths

    p = tmp_path / "w.csv"
    p.write_text(text)
    with pytest.raises(ValueError) as e:
        DynamicWidths.load(p, r18)
    assert re.match(rf"^per-input widths file '{re.escape(str(p))}'{message}", str(e.value)), \
        e.value
    assert "\n" not in str(e.value)


def test_per_input_array_bounded_before_allocating(tmp_path, r18):
    import numpy as np

    from dqt_hw.cost.workload import DynamicWidths

    # a header that claims 10^12 inputs: refused from the header, nothing allocated
    p = _npy(tmp_path, np.full((1, 21, 2), 4, np.int8))
    data = p.read_bytes().replace(b"(1, 21, 2)", b"(1000000000000, 21, 2)")
    (tmp_path / "huge.npy").write_bytes(data)
    with pytest.raises(ValueError, match=r"^per-input widths file '.*huge\.npy': shape\[0\]: "
                                         r"input should be less than or equal to 1000000, "
                                         r"not 1000000000000$"):
        DynamicWidths.load(tmp_path / "huge.npy", r18)
    (tmp_path / "cut.npy").write_bytes(p.read_bytes()[:-5])
    with pytest.raises(ValueError, match=r"^per-input widths file '.*cut\.npy' is not a plain "
                                         r"integer array: "):
        DynamicWidths.load(tmp_path / "cut.npy", r18)
    np.savez(tmp_path / "w.npz", width=np.full((1, 21, 2), 4))
    with pytest.raises(ValueError, match=r"^per-input widths file '.*w\.npz' must hold one "
                                         r"array 'widths', not \['width'\] \(did you mean "
                                         r"'widths'\?\)$"):
        DynamicWidths.load(tmp_path / "w.npz", r18)
    np.savez(tmp_path / "ok.npz", widths=np.full((1, 21, 2), 4, np.uint8))
    assert DynamicWidths.load(tmp_path / "ok.npz", r18).widths.dtype == np.int64


def test_per_input_widths_refused_by_cost_leave_no_output(tmp_path, capsys):
    import numpy as np

    from dqt_hw.cli import main

    p = _npy(tmp_path, np.full((2, 21, 2), 16))
    out = tmp_path / "out"
    assert main(["cost", "--per-input", str(p), "--no-plots", "--out", str(out)]) == 2
    assert "b_a = 16 is not a width the tile supports" in capsys.readouterr().err
    assert not out.exists()


# ------------------------------------------------------------------ published schemas


def test_checked_in_schemas_equal_a_fresh_generation():
    from pathlib import Path

    from dqt_hw.schema import schema_documents

    here = Path(__file__).resolve().parent.parent / "schemas"
    docs = schema_documents()
    assert sorted(docs) == sorted(p.name for p in here.glob("*.schema.json"))
    for name, text in docs.items():
        assert (here / name).read_text() == text, f"schemas/{name} is stale: make schemas"


def test_schema_check_command_finds_a_stale_file(tmp_path, capsys):
    from dqt_hw.schema.__main__ import main

    assert main([str(tmp_path)]) == 0
    assert main([str(tmp_path), "--check"]) == 0
    (tmp_path / "tech-table.schema.json").write_text("{}\n")
    assert main([str(tmp_path), "--check"]) == 1
    assert re.search(r"tech-table\.schema\.json: out of date \(make schemas\)$",
                     capsys.readouterr().err, re.M)


def test_published_schemas_accept_the_shipped_documents_and_refuse_bad_ones():
    import tomllib
    from pathlib import Path

    jsonschema = pytest.importorskip("jsonschema")
    from dqt_hw.design import Design
    from dqt_hw.sweep import DEFAULT_GRID

    here = Path(__file__).resolve().parent.parent / "schemas"

    def validator(name):
        schema = json.loads((here / f"{name}.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        return jsonschema.Draft202012Validator(schema)

    tech, grid = validator("tech-table"), validator("sweep-grid")
    design, widths = validator("design"), validator("per-input-widths")
    assert tech.is_valid(SHIPPED)
    assert not tech.is_valid({**SHIPPED, "dram_64b_pj": {"low": -1.0}})
    assert not tech.is_valid({**SHIPPED, "int_add_pj": {"8.0": 1.0}})
    assert grid.is_valid(DEFAULT_GRID)
    assert not grid.is_valid({**DEFAULT_GRID, "acc_bits": [16]})
    for d in (Design(), Design(component="requant", sum_width=30), Design(component="view")):
        assert design.is_valid(tomllib.loads(d.to_toml()))
    assert design.is_valid({"design": {"component": "pe", "params": {"acc_width": 20}}})
    assert not design.is_valid({"signed": "false"})
    assert widths.is_valid([[[4, 4], [8, 2]]])
    assert widths.is_valid([{"input": "0", "layer": "conv1", "b_a": 4, "b_w": 8}])
    assert not widths.is_valid([[[4, 17]]])
    assert not widths.is_valid([{"input": "0", "layer": "conv1", "b_a": 4}])


def test_design_schema_accepts_every_reference_design():
    import tomllib

    from dqt_hw.design.schema import check_design_file
    from dqt_hw.design.reference import REFERENCE_DESIGNS

    assert len(REFERENCE_DESIGNS) > 5
    for d in REFERENCE_DESIGNS:
        check_design_file(tomllib.loads(d.to_toml()), source=d.name)
        check_design_file({"design": tomllib.loads(d.to_toml())}, source=d.name)
    with pytest.raises(ValueError, match=r"^x: signed: input should be a valid boolean, "
                                         r"not 'false'$"):
        check_design_file({"signed": "false"}, source="x")
    with pytest.raises(ValueError, match=r"^x: unknown key 'acc_widht' in design \(did you "
                                         r"mean 'acc_width'\?\); known keys: component, "):
        check_design_file({"design": {"acc_widht": 20}}, source="x")


# ------------------------------------------------------------------ width mixes, topologies


@pytest.mark.parametrize("doc, message", [
    # each pair read as a static --widths is: a fraction refused, never truncated
    ({"*": "4x4", "c1": 4.7}, r"c1: b_a must be an integer width, not 4\.7"),
    ({"c1": [4, 4.0]}, r"c1: b_w must be an integer width, not 4\.0"),
    ({"c1": "4x17"}, r"c1: b_w must be a width in \[1, 16\], not 17"),
    ({"c1": [8]}, r"c1: a width pair has two widths \(b_a, b_w\), not \[8\]"),
    ({"c1": True}, r"c1: a width pair must be a string like '4x8' or a pair, not True"),
    ({"c1": "4y4"}, r"c1: cannot read the width pair '4y4'"),
    ({}, r"the document: dictionary should have at least 1 item"),
    ([["c1", "4x4"]], r"the document: input should be a valid dictionary"),
    # a layer the network lacks, with the nearest suggested
    ({"*": "4x4", "c11": "8x8"}, r"'c11': tiny has no conv/fc layer 'c11' \(did you mean "
                                 r"'c1'\?\)$"),
])
def test_width_mix_file_checked(tmp_path, doc, message):
    from dqt_hw.cost.workload import WidthMix, load_network

    net = tmp_path / "tiny.json"
    net.write_text(json.dumps(TINY_NET))
    p = tmp_path / "mix.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=rf"^width mix '{re.escape(str(p))}': {message}"):
        WidthMix.parse(str(p)).check(load_network(str(net)))


def test_width_mix_file_read(tmp_path):
    from dqt_hw.cost.workload import WidthMix

    p = tmp_path / "mix.json"
    p.write_text('{"*": "4x4", "c1": [8, 2], "c2": 6}')
    m = WidthMix.parse(str(p))
    assert (m.pair("c1"), m.pair("c2"), m.pair("other")) == ((8, 2), (6, 6), (4, 4))
    p.write_text('{"c1": "4x4", "c1": "8x8"}')
    with pytest.raises(ValueError, match=r"not valid JSON: duplicate key 'c1'"):
        WidthMix.parse(str(p))


@pytest.mark.parametrize("edit, message", [
    (lambda n: n[1].update(dilation=2),
     r"layer 'c1': unknown key 'dilation'; known keys: name, op, inputs, attrs, out_channels, "
     r"kernel, stride, padding, groups, relu$"),
    (lambda n: n[1].update(kernel=3.0), r"layer 'c1': kernel: input should be a valid "
                                        r"integer, not 3\.0$"),
    (lambda n: n[1].update(attrs={"relu": True}),
     r"layer 'c1': attributes \['kernel', 'out_channels', 'padding'\] given flat and 'attrs' "
     r"given too \(one form per node\)$"),
    (lambda n: n[1].update(padding=5, kernel=3), r"layer 'c1': padding 5 must be less than the "
                                                  r"kernel 3$"),
    (lambda n: n[0].update(shape=[4, 5]), r"layer 'input': shape: must be \[C, H, W\], three "
                                          r"sizes, not \[4, 5\]$"),
    (lambda n: n.append({"name": "p", "op": "maxpol", "inputs": ["c1"], "kernel": 2}),
     r"layer 'p': op: 'maxpol' is not an op \(did you mean 'maxpool'\?\)"),
])
def test_topology_network_checked_by_the_node_models(tmp_path, edit, message):
    """The cost models' network JSON (topology only) is checked by the network file's
    node models: the same attributes, types and bounds."""
    import copy

    from dqt_hw.cost.workload import load_network

    doc = copy.deepcopy(TINY_NET)
    edit(doc["nodes"])
    p = tmp_path / "t.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=rf"^network file '{re.escape(str(p))}': {message}"):
        load_network(str(p))


def test_cost_reads_the_graph_of_a_network_file():
    from dqt_hw.cost.workload import load_network
    from dqt_hw.net import network as nw

    g = load_network(str(nw.default_path()))
    assert g.name == "resnet8_digits"
    assert [nd.shape for nd in g] == [nd.shape for nd in nw.load(nw.default_path()).graph]


# ------------------------------------------------------------------ sidecars, synthesis results


def test_sidecars_read_strictly(tmp_path):
    from pathlib import Path

    from dqt_hw.design import Design
    from dqt_hw.design.core import read_sidecar

    rtl = Path(__file__).resolve().parent.parent / "rtl"
    for f in sorted(rtl.glob("*.json")):
        sc = read_sidecar(f)
        assert Design.from_sidecar(sc).name == sc["module"]
    doc = json.loads((rtl / "dqt_pe.json").read_text())
    for edit, message in [
        (lambda d: d.update(modul="x"), r"unknown key 'modul' \(did you mean 'module'\?\)"),
        (lambda d: d["ports"][0].update(width=-1), r"ports\[0\]\.width: input should be "
                                                   r"greater than or equal to 1, not -1$"),
        (lambda d: d.update(format=2), r"format: input should be 1, not 2$"),
        (lambda d: d["parameters"].update(n=4.5), r"master width n must be an integer, "
                                                  r"not 4\.5$"),
    ]:
        bad = json.loads(json.dumps(doc))
        edit(bad)
        p = tmp_path / "s.json"
        p.write_text(json.dumps(bad))
        with pytest.raises((TypeError, ValueError), match=rf"^sidecar '{re.escape(str(p))}': "
                                                          rf"{message}"):
            read_sidecar(p)


def test_synth_reuse_results_checked(tmp_path, capsys):
    from dqt_hw.cli import main
    from dqt_hw.cost.synth import load_results

    base = json.loads((resources.files("dqt_hw.cost") / "data" /
                       "synth_baseline.json").read_text())["results"]
    p = tmp_path / "results.json"
    p.write_text(json.dumps({"results": base}))
    assert len(load_results(p)) == len(base)
    for results, message in [
        ([{**base[0], "transistors": "290"}], r"results\[0\]\.transistors: input should be a "
                                              r"valid integer, not '290'$"),
        ([{**base[0], "cells": -1}], r"results\[0\]\.cells: input should be greater than or "
                                     r"equal to 0, not -1$"),
        ([base[0], base[0]], r"results\[1\]\.name: 'dqt_view_floor' is given twice$"),
        ([{**base[0], "cels": 1}], r"unknown key 'cels' in results\[0\] \(did you mean "
                                   r"'cells'\?\)"),
    ]:
        p.write_text(json.dumps({"results": results}))
        with pytest.raises(ValueError, match=rf"^synthesis results '{re.escape(str(p))}': "
                                             rf"{message}"):
            load_results(p)
    # the command refuses it before synthesizing anything: one line, exit 2
    assert main(["synth", "dqt_view_floor", "--reuse", str(p), "--out",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown key 'cels'" in err


def test_published_network_and_width_mix_schemas():
    from pathlib import Path

    jsonschema = pytest.importorskip("jsonschema")
    from dqt_hw.net import network as nw

    here = Path(__file__).resolve().parent.parent / "schemas"

    def validator(name):
        schema = json.loads((here / f"{name}.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        return jsonschema.Draft202012Validator(schema)

    net, topo, mix = validator("network"), validator("network-topology"), validator("width-mix")
    shipped = json.loads(nw.default_path().read_text())
    assert net.is_valid(shipped)
    bad = json.loads(json.dumps(shipped))
    bad["nodes"][1]["attrs"]["dilation"] = 2
    assert not net.is_valid(bad)
    assert topo.is_valid(TINY_NET)
    assert not topo.is_valid({"nodes": [{**TINY_NET["nodes"][0], "shape": [4, 5, 5.5]}]})
    assert mix.is_valid({"*": "4x4", "c1": [8, 2], "c2": 6})
    assert not mix.is_valid({"c1": 4.7})
    assert not mix.is_valid({"c1": [4, 17]})


# ------------------------------------------------------------------ numeric checks (spec)


def test_quantize_refuses_nan_and_infinity():
    import numpy as np

    from dqt_hw import spec

    fmt = spec.fit_format(0.0, 1.0, 8)
    # before: quantize(nan) returned -2^63 (a NaN cast to int64)
    with pytest.raises(ValueError, match=r"^quantize: x must be finite, not nan \(1 of 1 "
                                         r"values\)$"):
        spec.quantize(float("nan"), fmt)
    with pytest.raises(ValueError, match=r"^quantize: x must be finite, not -inf at index "
                                         r"\(1, 0\) \(2 of 4 values\)$"):
        spec.quantize(np.array([[0.5, 0.1], [-np.inf, np.inf]]), fmt)
    assert spec.quantize([0.0, 1.0], fmt).tolist() == [0, 255]


@pytest.mark.parametrize("s", [10**18, -(10**18), 4097, -4097])
def test_round_shift_refuses_an_absurd_shift(s):
    from dqt_hw import spec

    # before: MemoryError (1 << (s - 1), x << -s)
    with pytest.raises(ValueError, match=rf"^shift s must be in \[-4096, 4096\], not {s}$"):
        spec.round_shift(5, s, "half_up")


def test_round_shift_at_the_bound_is_exact():
    from dqt_hw import spec

    assert spec.round_shift(5, 4096, "half_up") == 0
    assert spec.round_shift(-5, 4096, "floor") == -1
    assert spec.round_shift(3, -4096, "floor") == 3 << 4096


# ------------------------------------------------------------------ count options (train)


@pytest.mark.parametrize("argv, message", [
    # before: --cost-target nan trained and wrote a NaN network; --stages 100000 built a
    # 100000-channel ResNet (hundreds of GB of weights)
    (["--cost-target", "nan"], r"argument --cost-target: must be a finite number, not 'nan'"),
    (["--cost-target", "1.5"], r"cost_target must be a fraction in \[0, 1\] of the BitOPs "
                               r"at n/n, not 1\.5"),
    (["--stages", "100000"], r"stages must be 1 to 8 channel counts in \[1, 1024\], not "
                             r"\(100000,\)"),
    (["--stages", ""], r"stages must be 1 to 8 channel counts in \[1, 1024\], not \(\)"),
    (["--epochs", "0"], r"argument --epochs: must be an integer in \[1, 100000\], not '0'"),
    (["--batch", "-5"], r"argument --batch: must be an integer in \[1, 65536\], not '-5'"),
    (["--threads", "1e9"], r"argument --threads: must be an integer in \[1, 1024\], "
                           r"not '1e9'"),
    (["--lr", "inf"], r"argument --lr: must be a finite number, not 'inf'"),
    (["--seed", "-1"], r"argument --seed: must be an integer in \[0, 4294967295\], not '-1'"),
])
def test_train_options_refused_before_training(tmp_path, capsys, argv, message):
    from dqt_hw.train.__main__ import main

    out = tmp_path / "net.json"
    with pytest.raises(SystemExit) as e:
        main(["--out", str(out), *argv])
    assert e.value.code == 2
    assert re.search(rf"^python -m dqt_hw\.train: error: {message}$",
                     capsys.readouterr().err, re.M)
    assert not out.exists()


@pytest.mark.parametrize("kw, message", [
    (dict(cost_target=math.nan), r"cost_target must be a fraction in \[0, 1\] of the BitOPs "
                                 r"at n/n, not nan"),
    (dict(epochs=math.inf), r"epochs must be an integer in \[1, 100000\], not inf"),
    (dict(epochs=3.0), r"epochs must be an integer in \[1, 100000\], not 3\.0"),
    (dict(alpha=math.inf), r"alpha must be >= 0, not inf"),
    (dict(lr=math.nan), r"lr must be > 0, not nan"),
    (dict(stages=(16, 2000)), r"stages must be 1 to 8 channel counts in \[1, 1024\], "
                              r"not \(16, 2000\)"),
])
def test_train_config_refused(kw, message):
    from dqt_hw.train.config import DEFAULTS, check_config

    with pytest.raises(ValueError, match=rf"^{message}$"):
        check_config({**DEFAULTS, **kw})


# ------------------------------------------------------------------ atomic outputs


def test_atomic_path_keeps_the_old_file_on_failure(tmp_path):
    from dqt_hw.files import atomic_path, atomic_write_text

    p = tmp_path / "a.txt"
    atomic_write_text(p, "old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(p) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert p.read_text() == "old\n"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["a.txt"]  # no temporary left
    atomic_write_text(p, "new\n")
    assert p.read_text() == "new\n" and oct(p.stat().st_mode & 0o777) != "0o600"


def test_cost_run_that_fails_midway_leaves_no_summary(tmp_path, monkeypatch, capsys):
    from dqt_hw.cli import main
    from dqt_hw.cost import plots

    out = tmp_path / "cost"
    args = ["cost", "--net", str(_tiny_net(tmp_path)), "--rows", "2", "--cols", "2",
            "--out", str(out)]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [f.rsplit("/", 1)[-1] for f in summary["files"]] == [
        "layers.csv", "energy_breakdown.png", "bitops_vs_mix.png", "area_vs_widths.png",
        "summary.json"]

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(plots, "plot_bitops_vs_mix", broken)
    assert main(args) == 1
    assert "disk full" in capsys.readouterr().err
    # the previous run's summary is gone (it would vouch for a mix of two runs), every
    # file left is whole, no temporary file is left
    assert not (out / "summary.json").exists()
    assert (out / "layers.csv").read_text().count("\n") == 2  # header and c1
    assert not [f for f in out.iterdir() if f.name.startswith(".")]


def test_sweep_tables_replaced_atomically(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from dqt_hw.sweep import write_table

    write_table([{"key": "a", "x": 1}], tmp_path)
    before = (tmp_path / "sweep.parquet").read_bytes()

    def broken(table, where, **k):
        open(where, "wb").write(b"PAR1 half")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        write_table([{"key": "b", "x": 2}], tmp_path)
    assert (tmp_path / "sweep.parquet").read_bytes() == before
    assert sorted(f.name for f in tmp_path.iterdir()) == ["sweep.csv", "sweep.parquet"]


def _tiny_net(tmp_path):
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps(TINY_NET))
    return p


def test_design_table_found_by_the_fuzz_suite():
    from dqt_hw.design import Design

    # before: params = "" was an empty table, and a key both in the table and under params
    # took the params value silently (n = "" was ignored)
    with pytest.raises(TypeError, match=r"^d: params must be a table, not ''$"):
        Design.from_mapping({"params": ""}, source="d")
    with pytest.raises(ValueError, match=r"^d: \['n'\] given both in the table and under "
                                         r"params$"):
        Design.from_mapping({"n": "", "params": {"n": 4}}, source="d")


def test_bugs_the_fuzz_suite_found(tmp_path, grid_doc, r18):
    from dqt_hw.cost.workload import DynamicWidths
    from dqt_hw.sweep import check_grid

    # a finite but absurd energy made an infinite total: energies are bounded by 1 uJ
    with pytest.raises(ValueError, match=r"^technology table 'x': mux2_pj_per_bit: input "
                                         r"should be less than or equal to 1000000, "
                                         r"not 1e\+300$"):
        TechTable("x", {**SHIPPED, "mux2_pj_per_bit": 1e300})
    # an optional grid key given as null escaped as a bare TypeError
    with pytest.raises(ValueError, match=r"^sweep grid: n: input should be a valid list, "
                                         r"not None$"):
        check_grid({**grid_doc, "n": None})
    # a damaged .npy header escaped numpy's parser as tokenize.TokenError
    p = tmp_path / "w.npy"
    p.write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, "
                  b"'shape': (2,, }" + b" " * 55 + b"\n" + bytes(64))
    with pytest.raises(ValueError, match=r"^per-input widths file '.*w\.npy' is not a plain "
                                         r"integer array: "):
        DynamicWidths.load(p, r18)
    # a corrupt compressed .npz member escaped as zlib.error
    import io
    import zipfile
    import zlib

    import numpy as np

    buf = io.BytesIO()
    np.savez_compressed(buf, widths=np.random.default_rng(0).integers(1, 9, (40, 21, 2)))
    data = buf.getvalue()

    def zlib_fails(raw):
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as z, z.open("widths.npy") as f:
                f.read()
        except zlib.error:
            return True
        except Exception:
            return False
        return False

    bad = next(raw for i in range(60, len(data)) if zlib_fails(
        raw := data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]))
    (tmp_path / "z.npz").write_bytes(bad)
    with pytest.raises(ValueError, match=r"^per-input widths file '.*z\.npz' is not a plain "
                                         r"integer array: Error -3 while decompressing"):
        DynamicWidths.load(tmp_path / "z.npz", r18)


def test_quantize_saturates_a_huge_finite_value_quietly():
    import warnings

    from dqt_hw import spec

    fmt = spec.fit_format(-1.0, 1.0, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert spec.quantize([1e308, -1e308], fmt).tolist() == [255, 0]
