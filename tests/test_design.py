"""dqt_hw.design: one description, validated once, read back equal from TOML and sidecars."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, strategies as st

from dqt_hw.design import COMPONENTS, PARAMETERS, Design, as_design, rules
from dqt_hw.hw import NestedView, PEArray, Requantizer, Tile
from dqt_hw.design.reference import REFERENCE_DESIGNS
from dqt_hw.hw.config import build
from dqt_hw.hw.verilog import generate


@st.composite
def tile_designs(draw):
    n = draw(st.sampled_from([4, 6, 8]))
    signed = draw(st.booleans())
    widths = draw(st.lists(st.integers(2, n), min_size=1, max_size=4, unique=True))
    cols = draw(st.integers(1, 8))
    return Design(
        rows=draw(st.integers(1, 8)), cols=cols, n=n, signed=signed,
        rq_lanes=draw(st.sampled_from([None] + [d for d in range(1, cols + 1) if cols % d == 0])),
        widths=tuple(widths), acc_width=draw(st.integers(2 * n + 1, 48)),
        overflow=draw(st.sampled_from(rules.HW_OVERFLOW_MODES)),
        view_rounding=draw(st.sampled_from(rules.VIEW_ROUNDINGS)),
        depth_bits=draw(st.integers(1, 16)), kbits=draw(st.integers(2, 40)),
        ebits=draw(st.integers(1, 7)), sbits=draw(st.integers(1, 8)),
        max_pack=draw(st.sampled_from([p for p in (1, 2, 4)
                                       if n % p == 0 and (not signed or n // p >= 2)])))


@given(tile_designs())
def test_toml_round_trip(tmp_path_factory, d):
    path = tmp_path_factory.mktemp("d") / "d.toml"
    path.write_text(d.to_toml())
    assert Design.from_toml(path) == d


@pytest.mark.parametrize("d", REFERENCE_DESIGNS, ids=lambda d: d.name)
def test_sidecar_records_the_design(d):
    _, sidecar = generate(d)
    back = Design.from_sidecar(json.loads(json.dumps(sidecar)))
    assert back == d
    assert sidecar["parameters"] == d.parameters()


def test_derived_quantities_are_the_generators():
    d = Design(rows=3, cols=5, depth_bits=7, kbits=20, ebits=4, acc_width=24, max_pack=2)
    tile = Tile(d)
    tile._MustUse__silence = True
    assert tile.design is d
    assert (tile.latency, tile.min_period, tile.sum_width) == (5 + 2, 5, 8 + 7 + 1)
    assert tile.requant_sum_bits == 20 + 24 + 15 + 2 == d.requant_sum_bits
    lane = tile.requantizer()
    lane._MustUse__silence = True
    assert lane.sum_width == d.side_sum_width
    assert tile.cycles_per_width_pair()["4x4"] == 0.5
    arr = PEArray(d)
    arr._MustUse__silence = True
    assert arr.latency == d.latency - 1 and arr.sum_width == d.side_sum_width


def test_rq_lanes_default_and_derived_timing():
    """rq_lanes = cols is the default design (left out of the sidecar and the TOML); fewer
    lanes take C / rq_lanes cycles per row and that many more edges of latency."""
    assert Design(cols=8, rq_lanes=8) == Design() and Design().rq_lanes is None
    assert "rq_lanes" not in Design(rq_lanes=8).to_toml()
    d = Design(rows=4, cols=8, rq_lanes=2)
    assert (d.requant_lanes, d.row_cycles, d.latency, d.min_period) == (2, 4, 8 + 1 + 4, 8)
    assert d.parameters()["rq_lanes"] == 2 and d.replace(cols=4).row_cycles == 2
    assert (Design().requant_lanes, Design().row_cycles, Design().latency) == (8, 1, 10)
    _, sidecar = generate(Design(rows=2, cols=4, rq_lanes=1, n=4, acc_width=10, depth_bits=3,
                                 kbits=6, ebits=2, sbits=3))
    assert Design.from_sidecar(json.loads(json.dumps(sidecar))).rq_lanes == 1
    assert (sidecar["timing"]["cycles_per_row"], sidecar["timing"]["latency_cycles"]) == (4, 9)


def test_sub_takes_only_the_part_parameters():
    d = Design(rows=2, cols=2, n=6, acc_width=20, overflow="saturate", kbits=16,
               view_rounding="half_up", depth_bits=5)
    rq = d.sub("requant")
    assert (rq.component, rq.n, rq.acc_width, rq.kbits, rq.sum_width) == \
        ("requant", 6, 20, 16, 6 + 5 + 1)
    assert rq.overflow == "wrap"  # not a requant parameter: left at its default
    view = d.sub("view")
    assert (view.n, view.view_rounding, view.widths) == (6, "half_up", d.widths)
    r = Requantizer(d)
    r._MustUse__silence = True
    assert r.design == rq


def test_generators_take_a_design_or_keywords():
    d = Design(component="pe", n=4, acc_width=12)
    a, b = build(d), build(Design(component="pe", n=4, acc_width=12))
    a._MustUse__silence = b._MustUse__silence = True
    assert a.design == b.design == d
    with pytest.raises(TypeError, match=r"^design must be a dqt_hw.design.Design, not 8$"):
        Tile(8)
    with pytest.raises(ValueError, match=r"parameter 'rounding' is not one of the view "
                                         r"parameters .*did you mean 'view_rounding'"):
        NestedView(rounding="half_up")


@pytest.mark.parametrize("kw, exc, match", [
    (dict(component="view", rows=4), ValueError,
     r"^parameter 'rows' is not one of the view parameters"),
    (dict(component="tile", sum_width=12), ValueError, r"^sum_width is derived for a tile"),
    (dict(name="9x"), ValueError, r"^module name must be a Verilog identifier"),
    (dict(name="module"), ValueError, r"^module name 'module' is a reserved word of Verilog"),
    (dict(name="always_ff"), ValueError, r"^module name 'always_ff' is a reserved word"),
    (dict(name="t" * 129), ValueError, r"^module name must have at most 128 characters, not 129"),
    (dict(widths=(4, 8, 4)), ValueError, r"^widths \(4, 8, 4\) name width 4 twice$"),
    (dict(acc_width=16), ValueError, r"^accumulator width W = 16 is narrower than one product"),
    (dict(overflow="trap"), ValueError, r"in hardware, not 'trap' \(supported by the reference"),
    (dict(max_pack=3), ValueError, r"^max_pack must be one of \(1, 2, 4\), not 3$"),
    (dict(rows=0), ValueError, r"^rows R must be in \[1, 64\], not 0$"),
    (dict(signed="yes"), TypeError, r"^signed must be a bool, not 'yes'$"),
    (dict(cols=6, rq_lanes=4), ValueError,
     r"^requantizer lanes rq_lanes must divide cols = 6 \(one of \[1, 2, 3, 6\]\), not 4$"),
    (dict(rq_lanes=0), ValueError, r"^requantizer lanes rq_lanes must be in \[1, 8\], not 0$"),
    (dict(component="array", rq_lanes=2), ValueError,
     r"^parameter 'rq_lanes' is not one of the array parameters"),
])
def test_design_refuses(kw, exc, match):
    with pytest.raises(exc, match=match):
        Design(**kw)


def test_every_parameter_is_a_field_and_every_field_a_parameter():
    fields = {f.name for f in dataclasses.fields(Design)} - {"component", "name"}
    assert set().union(*PARAMETERS.values()) == fields
    assert tuple(PARAMETERS) == COMPONENTS


def test_as_design():
    t = Tile(rows=2, cols=2)
    t._MustUse__silence = True
    assert as_design(t) == Design(rows=2, cols=2)
    assert as_design(t, "view") == Design(rows=2, cols=2).sub("view")
    with pytest.raises(TypeError, match="expected a dqt_hw.design.Design"):
        as_design(object())


def test_cli_design_file_drives_rtl_and_cost(tmp_path, capsys):
    from dqt_hw.cli import main

    d = Design(name="my_tile", rows=2, cols=2, acc_width=24, overflow="saturate",
               widths=(4, 8), depth_bits=13)
    path = tmp_path / "my_tile.toml"
    path.write_text(d.to_toml())
    assert main(["rtl", "--design", str(path), "-o", str(tmp_path / "rtl")]) == 0
    side = json.loads((tmp_path / "rtl" / "my_tile.json").read_text())
    assert Design.from_sidecar(side) == d
    assert main(["cost", "--design", str(path), "--net", "resnet18_cifar10", "--widths", "4x4",
                 "--no-plots", "--out", str(tmp_path / "cost")]) == 0
    summary = json.loads((tmp_path / "cost" / "summary.json").read_text())
    assert summary["tile"] == d.to_dict()
    capsys.readouterr()
    assert main(["cost", "--design", str(path), "--acc-width", "16", "--no-plots",
                 "--out", str(tmp_path / "c2")]) == 2
    assert "accumulator width W = 16 is narrower than one product" in capsys.readouterr().err
