"""Golden sets for a design: which case fits which design, degenerate sets refused, the
writer (switched constants, everything from the design, atomic sets), the CLI."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dqt_hw import model, spec
from dqt_hw.cli import main
from dqt_hw.design import Design
from dqt_hw.golden import (check_meaningful, degenerate, fits, read_case, read_set,
                           saturated_fraction, verify_case)
from dqt_hw.golden.cases import build_case, compute, constant_arrays, layer_params
from dqt_hw.golden.fit import fit_table
from dqt_hw.golden.writer import (builtin_source, design_cases, layer_data, random_source,
                                  write_design_set)
from dqt_hw.design.reference import REFERENCE_DESIGNS

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "golden"
REF = {d.name: d for d in REFERENCE_DESIGNS}
REF_TILES = [d for d in REFERENCE_DESIGNS if d.component == "tile"]
SMALL = random_source("8x32x8", seed=5)


def small_case(design, pair=(8, 8)):
    return design_cases(design, SMALL, [pair])[0].case()


# ----------------------------------------------------------------------------- fits


def test_a_case_fits_its_own_design():
    d = Design(rows=2, cols=2, acc_width=24, overflow="saturate", view_rounding="half_up")
    assert fits(d, small_case(d, (4, 4))) == []


@pytest.mark.parametrize("other, reason", [
    (dict(n=7, widths=None, acc_width=24), "activations of master width n = 8, the design's n = 7"),
    (dict(signed=True, widths=None), "unsigned activations, the design has signed codes"),
    (dict(acc_width=26), "accumulator W = 24 saturate, the design has W = 26 saturate"),
    (dict(overflow="wrap"), "accumulator W = 24 saturate, the design has W = 24 wrap"),
    (dict(view_rounding="floor"),
     "half_up views at b_a = 4, b_w = 4 < n, the design has floor views"),
    (dict(widths=(2, 8)), "b_a = 4 is not one of the design's widths [2, 8]"),
    (dict(depth_bits=5), "K = 32 taps is deeper than a tile (2^depth_bits = 32)"),
    (dict(kbits=16), "constant K1 = "),
    (dict(sbits=4), "right shift S = "),
])
def test_fit_reasons(other, reason):
    d = Design(rows=2, cols=2, acc_width=24, overflow="saturate", view_rounding="half_up")
    case = small_case(d, (4, 4))
    why = fits(d.replace(**other), case)
    if "depth_bits" in other:  # K = 32 fits 2^5 exactly; one more tap does not
        assert why == []
        why = fits(d.replace(depth_bits=4), case)
        reason = "K = 32 taps is deeper than a tile (2^depth_bits = 16)"
    assert any(reason in w for w in why), why


def test_view_rounding_only_matters_below_n():
    d = Design(rows=2, cols=2, acc_width=24, view_rounding="half_up")
    case = small_case(d, (8, 8))
    assert fits(d.replace(view_rounding="floor"), case) == []
    assert fits(d.replace(view_rounding="floor"), small_case(d, (8, 4))) == [
        "half_up views at b_w = 4 < n, the design has floor views"]


def test_fit_reasons_of_the_canonical_set():
    cases = {c.manifest["case"]: c for c in read_set(GOLDEN)}
    w32, sat = REF["dqt_tile8x8_w32"], REF["dqt_tile8x8_w18_sat"]
    assert fits(sat, cases["gemm_8x48x8_w18_saturate"]) == [
        "signed weights, the design has unsigned codes"]
    assert fits(w32, cases["view_n8_floor"]) == [
        "a nested_view case runs on a view unit, not on a tile"]
    assert fits(REF["dqt_view"], cases["view_n8_floor"]) == [
        "floor views, the design has half_up views"]
    assert fits(REF["dqt_view_floor"], cases["view_n8_floor"]) == []
    grouped = dict(cases["conv_8x6x6_k3_b4x4_w32"].params, groups=2)
    c = cases["conv_8x6x6_k3_b4x4_w32"]
    g = type(c)(c.path, {**c.manifest, "params": grouped}, c.arrays)
    assert "grouped conv (groups = 2): the tile runs one group" in fits(w32, g)
    narrow = w32.replace(kbits=20)  # window constants c - acc beyond 20 bits
    assert any("window constants K4 = c - acc" in w
               for w in fits(narrow, cases["gemm_8x64x8_w32_wrap"]))


def test_readme_table_is_current():
    designs = [d for d in REFERENCE_DESIGNS if d.component in ("view", "tile")]
    table = fit_table(read_set(GOLDEN), designs)
    assert table in (GOLDEN / "README.md").read_text(), \
        "golden/README.md: paste the current dqt_hw.golden.fit.fit_table"


# ----------------------------------------------------------------------------- degenerate


@pytest.fixture(scope="module")
def demo_layer():
    d = Design(acc_width=32)
    return builtin_source("resnet18_l1c1"), d, layer_data(builtin_source("resnet18_l1c1"), d)


def _conv_case(design, name, x, w, rq, b):
    K, S = constant_arrays(rq)
    params = layer_params(design, kind="conv_layer", b_a=b, b_w=b, b_out=8,
                          rounding="half_even", seed=2026, padding=1)
    return build_case(name, "conv_layer", params, {"x": x, "w": w, "K": K, "S": S}).case()


def test_old_unshifted_4x4_demo_case_is_refused(demo_layer):
    """The old demo's 4/4 case: the 8/8 constants unshifted give only zero codes."""
    src, d, (x, w, master, _) = demo_layer
    case = _conv_case(d, "old_b4x4", x, w, master, 4)
    with pytest.raises(ValueError, match=r"^golden case 'old_b4x4' is degenerate: 1 distinct "
                                         r"expected output value\(s\) \(0\) among 65536, fewer "
                                         r"than 8"):
        check_meaningful(case)
    good = _conv_case(d, "b4x4", x, w, master.switched(d_a=4, d_w=4, d_out=0), 4)
    assert degenerate(good) == []


def test_every_accumulator_saturated_is_refused(demo_layer):
    src, d, (x, w, master, _) = demo_layer
    case = _conv_case(d.replace(acc_width=18, overflow="saturate"), "w18", x, w, master, 8)
    assert saturated_fraction(case) == 1.0
    assert degenerate(case) == [
        "1 distinct expected output value(s) (0) among 65536, fewer than 8",
        "every accumulator saturated (65536 of 65536 outputs, W = 18)"]
    with pytest.raises(ValueError, match="every accumulator saturated"):
        write_design_set(d.replace(acc_width=18, overflow="saturate"), "/nonexistent/x", src,
                         [(8, 8)])


def test_canonical_cases_are_meaningful():
    for case in read_set(GOLDEN):
        assert degenerate(case) == [], case.manifest["case"]


def _term_matters(case):
    """K1..K4 nonzero in every lane, and zeroing each term (all lanes) changes codes."""
    K = case["K"]
    if np.any(K == 0):
        return False
    base = case["out"]
    inputs = {k: case[k] for k in ("x", "w", "K", "S")}
    for t in range(4):
        K0 = K.copy()
        K0[t] = 0
        outs, _ = compute(case.kind, case.params, {**inputs, "K": K0})
        if np.array_equal(outs["out"].data, base):
            return False
    return True


@pytest.mark.parametrize("design", REF_TILES, ids=lambda d: d.name)
def test_every_reference_tile_has_a_meaningful_canonical_case(design):
    fitting = [c for c in read_set(GOLDEN) if not fits(design, c) and not degenerate(c)]
    layers = [c for c in fitting if c.kind == "conv_layer" and _term_matters(c)]
    assert layers, f"no canonical layer case where every constant term matters fits {design.name}"
    if design.overflow == "saturate":
        fr = [saturated_fraction(c) for c in layers]
        assert any(0.0 < f < 1.0 for f in fr), fr
    if design.max_pack > 1:  # every pack factor of the packed tile is exercised
        packs = {design.pack_factor(c.params["b_a"], c.params["b_w"]) for c in layers}
        assert packs == {1, 2, 4}, packs


# ----------------------------------------------------------------------------- writer


def test_pairs_use_the_master_constants_shifted(tmp_path):
    """Against docs/arithmetic.md section 7: K kept, S of k1 moves by d_a + d_w, of k2 by
    d_a, of k3 by d_w, of k4 by 0 (d_out = 0)."""
    d = Design(rows=4, cols=4, acc_width=28)
    _, cases = write_design_set(d, tmp_path / "s", SMALL, [(8, 8), (6, 4), (2, 3)])
    base = cases[0].case()
    for c in cases[1:]:
        case = c.case()
        da, dw = 8 - case.params["b_a"], 8 - case.params["b_w"]
        np.testing.assert_array_equal(case["K"], base["K"])
        shift = np.array([da + dw, da, dw, 0])[:, None]
        np.testing.assert_array_equal(case["S"], base["S"] - shift * (base["K"] != 0))


def test_written_set_records_the_design_and_regenerates(tmp_path):
    d = Design(rows=2, cols=2, acc_width=21, overflow="saturate", view_rounding="half_up",
               kbits=24, name="my_tile")
    path, cases = write_design_set(d, tmp_path / "a", SMALL, [(8, 8), (4, 4)])
    write_design_set(d, tmp_path / "b", SMALL, [(8, 8), (4, 4)])
    files = lambda r: {p.relative_to(r).as_posix(): p.read_bytes()  # noqa: E731
                       for p in sorted(r.rglob("*")) if p.is_file()}
    assert files(tmp_path / "a") == files(tmp_path / "b")
    sm = json.loads((path / "set.json").read_text())
    assert Design.from_mapping(sm["design"]) == d
    assert sorted(sm["cases"]) == sorted(c.name for c in cases)
    for case in read_set(path):
        p = case.params
        assert (p["acc_width"], p["overflow"], p["view_rounding"], p["const_bits"]) == \
            (21, "saturate", "half_up", 24)
        assert p["a_format"] == p["w_format"] == {"n": 8, "signed": False}
        assert verify_case(case) == [] and fits(d, case) == []


def test_set_manifest_guards_the_set(tmp_path):
    d = Design(rows=2, cols=2)
    path, _ = write_design_set(d, tmp_path / "s", SMALL, [(8, 8)])
    shutil.copytree(GOLDEN / "gemm_8x64x8_w32_wrap", path / "extra")
    with pytest.raises(ValueError, match=r"set\.json': does not list the case directories "
                                         r"\['extra'\]$"):
        read_set(path)


def test_refused_write_leaves_the_old_set(tmp_path):
    d = Design(rows=2, cols=2)
    path, _ = write_design_set(d, tmp_path / "s", SMALL, [(8, 8)])
    before = sorted(p.name for p in path.iterdir())
    with pytest.raises(ValueError, match=r"does not fit the design 'dqt_tile' it is written "
                                         r"for: output channel 0: right shift S = \d+ does not "
                                         r"fit sbits = 3"):
        write_design_set(d.replace(sbits=3), path, SMALL, [(8, 8)])
    assert sorted(p.name for p in path.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["s"]  # no temporary left


def test_signed_design_gets_signed_codes(tmp_path):
    d = Design(rows=2, cols=2, signed=True, acc_width=24)
    src = builtin_source("resnet8_l1c1")
    path, cases = write_design_set(d, tmp_path / "s", src, [(8, 8), (4, 4)])
    for c in read_set(path):
        assert c.params["a_format"]["signed"] and c.params["out_signed"]
        assert c["x"].min() >= -128 and c["x"].max() <= 127
        assert fits(d, c) == [] and degenerate(c) == []


# ----------------------------------------------------------------------------- CLI


def test_cli_write_and_verify(tmp_path, capsys):
    toml = tmp_path / "t.toml"
    toml.write_text(Design(rows=2, cols=2, acc_width=20, overflow="saturate").to_toml())
    out = tmp_path / "set"
    assert main(["golden", "write", "--design", str(toml), "--out", str(out), "--net",
                 "resnet8_digits", "--layer", "layer1.0.conv1", "--pairs", "8x8,4x4"]) == 0
    text = capsys.readouterr().out
    assert "resnet8_digits_layer1.0.conv1_b8x8_w20_saturate" in text and "2 cases written" in text
    assert main(["golden", "verify", str(out)]) == 0  # the design from set.json
    text = capsys.readouterr().out
    assert "2 of 2 cases fit design dqt_tile" in text and "(set.json)" in text
    assert main(["golden", "verify", str(out), "--design", str(toml), "--acc-width", "22"]) == 0
    text = capsys.readouterr().out
    assert "does not fit: accumulator W = 20 saturate, the design has W = 22 saturate" in text
    assert "0 of 2 cases fit" in text


def test_cli_write_refusals(tmp_path, capsys):
    out = str(tmp_path / "s")
    assert main(["golden", "write", "--out", out, "--builtin", "nope"]) == 2
    assert "unknown built-in layer 'nope' (known: resnet18_l1c1" in capsys.readouterr().err
    assert main(["golden", "write", "--out", out, "--net", "resnet18_cifar10"]) == 2
    assert "--net needs --layer" in capsys.readouterr().err
    assert main(["golden", "write", "--out", out, "--random", "--pairs", "8x9"]) == 2
    assert "b_w = 9 is not one of the design's widths" in capsys.readouterr().err
    assert main(["golden", "write", "--out", out, "--net", "resnet50_imagenet", "--layer", "fc",
                 "--acc-width", "20", "--overflow", "saturate", "--pairs", "8x8"]) == 2
    assert "is degenerate" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("argv, message", [
    (["--random", "--shape", "100000x100000x100000"],
     "each of M, K, N at most 65536 and M\\*K\\*N at most 67108864 MACs, not "
     "'100000x100000x100000' \\(1000000000000000 MACs\\)"),
    (["--random", "--shape", "8x8192x8192"], "at most 67108864 MACs, not '8x8192x8192'"),
    (["--random", "--pairs", ""], "width pairs are B_AxB_W, comma separated .* not '' in ''"),
    (["--random", "--pairs", "4x4,4x4"], "width pair 4x4 is given twice in '4x4,4x4'"),
    (["--builtin", "resnet8_l1c1", "--trained"], "--trained takes a network file"),
    (["--random", "--inputs", "3"], "--inputs counts the test images of --trained"),
    (["--net", "resnet8_digits", "--layer", "conv1", "--trained", "--seed", "3"],
     "--trained uses the network's own data: --seed does not apply"),
    (["--net", "resnet8_digits", "--layer", "conv1", "--trained", "--inputs", "0"],
     "argument --inputs: must be an integer in \\[1, 64\\], not '0'"),
    (["--random", "--seed", "-1"], "argument --seed: must be an integer in \\[0, "),
])
def test_cli_write_refuses_options_that_would_not_apply_or_blow_up(tmp_path, capsys, argv,
                                                                     message):
    """Every option either applies or is refused (never silently ignored), and sizes are
    bounded before anything is allocated."""
    import re

    out = tmp_path / "s"
    try:
        code = main(["golden", "write", "--out", str(out), *argv])
    except SystemExit as e:  # argparse's usage error
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert re.search(message, err.strip().splitlines()[-1]), err  # the last line says why
    assert "Traceback" not in err
    assert not out.exists()


def test_sim_refuses_a_set_that_does_not_fit(capsys):
    """Before any Verilator build: every case that does not fit is listed, exit 1."""
    assert main(["sim", "--golden", str(GOLDEN), "--acc-width", "18",
                 "--overflow", "saturate"]) == 1
    text = capsys.readouterr().out
    assert "gemm_8x48x8_w18_saturate: does not fit: signed weights" in text
    assert "view_n8_floor: does not fit: a nested_view case runs on a view unit" in text
    assert "dqt-hw sim: FAIL: 11 of 12 case(s) do not fit design dqt_tile" in text


def test_sim_without_the_benches_says_so(monkeypatch, capsys):
    import importlib

    real = importlib.import_module

    def no_sim(name, *a, **k):
        if name.startswith("sim"):
            raise ModuleNotFoundError(f"No module named {name!r}", name="sim")
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", no_sim)
    assert main(["sim", "--golden", str(GOLDEN)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the cocotb benches (the top-level package sim/) are not " \
        "importable: they come with the repository checkout" in err


def test_golden_write_help_lists_the_builtins(capsys):
    with pytest.raises(SystemExit):
        main(["golden", "write", "--help"])
    text = capsys.readouterr().out
    for name in ("resnet18_l1c1", "resnet18_l2c1", "resnet8_l1c1"):
        assert name in text


def test_read_case_of_an_old_layout_is_refused(tmp_path):
    g = tmp_path / "gemm_8x64x8_w32_wrap"
    shutil.copytree(GOLDEN / g.name, g)
    m = json.loads((g / "manifest.json").read_text())
    m["format_version"] = 1
    m["params"]["acc_bits"] = m["params"].pop("acc_width")
    (g / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ValueError, match=r"manifest\.json': format_version: input should be 2, "
                                         r"not 1$"):
        read_case(g)


def test_spec_constants_equal_fresh_ones_at_the_narrow_widths(demo_layer):
    """The switched 4/4 constants equal the ones computed afresh at the 4-bit steps (the
    dequantization-free property), so a set's constants are those of its widths."""
    src, d, (x, w, master, f) = demo_layer
    fresh = model.Requant.from_formats(a_fmt=f["a"], b_a=4, w_fmts=f["w"], b_w=4,
                                       out_fmt=f["out"], b_out=8, taps=576,
                                       rounding="half_even", bias=f["bias"],
                                       bits=spec.DEFAULT_CONST_BITS)
    got = master.switched(d_a=4, d_w=4, d_out=0)
    for a, b in zip(constant_arrays(got), constant_arrays(fresh)):
        np.testing.assert_array_equal(a, b)


def test_trained_network_layer_equals_the_executor(tmp_path, capsys):
    """``golden write --trained``: the shipped network's own weights, constants and real
    layer inputs; at n/n its expected codes are the integer executor's own layer output,
    and every narrower pair uses the master constants switched by shifts."""
    from dqt_hw.cli import main
    from dqt_hw.golden import read_case
    from dqt_hw.net import network as nw
    from dqt_hw.net.executor import input_codes
    from dqt_hw.net.tiles import layer_io
    from dqt_hw.train import data as data_mod

    toml = tmp_path / "d.toml"
    toml.write_text(Design(acc_width=32, view_rounding="half_up").to_toml())
    out = tmp_path / "set"
    assert main(["golden", "write", "--design", str(toml), "--net", "resnet8_digits",
                 "--layer", "layer1.0.conv1", "--trained", "--inputs", "2", "--out", str(out),
                 "--pairs", "8x8,4x4"]) == 0
    net = nw.load(nw.default_path())
    codes = input_codes(net, data_mod.load("digits-contrast").x_test[:2])
    x, y = layer_io(net, "layer1.0.conv1", codes,
                    np.full((2, len(net.compute_layers()), 2), 8, np.int64))
    c8 = read_case(out / "resnet8_digits_layer1.0.conv1_trained_b8x8_w32_wrap")
    np.testing.assert_array_equal(c8["x"], x)
    np.testing.assert_array_equal(c8["w"], net.layers["layer1.0.conv1"].w)
    np.testing.assert_array_equal(c8["out"], y)
    c4 = read_case(out / "resnet8_digits_layer1.0.conv1_trained_b4x4_w32_wrap")
    rq4 = net.requant("layer1.0.conv1", 4, 4)
    np.testing.assert_array_equal(c4["S"][0], [ch[0].S for ch in rq4.constants])
    np.testing.assert_array_equal(c4["K"], c8["K"])  # a width switch moves shifts only
    assert len(np.unique(c4["out"])) >= 8
    capsys.readouterr()
    assert main(["golden", "write", "--design", str(toml), "--net", "resnet8_digits",
                 "--layer", "fc", "--trained", "--out", str(tmp_path / "x")]) == 2
    assert "has no conv layer 'fc'" in capsys.readouterr().err
