"""Sweeps: grid, resumability, local pool and Dask, tables, Pareto choice, accumulator sizing."""

from __future__ import annotations

import csv
import json

import pytest

from dqt_hw.design import Design

from dqt_hw.sweep import (choose_point, expand_grid, load_done, pareto_front, point_key,
                          run_sweep, size_accumulators)

TINY = {"name": "tiny", "nodes": [
    {"name": "input", "op": "input", "shape": [4, 6, 6]},
    {"name": "c1", "op": "conv", "inputs": ["input"], "out_channels": 8, "kernel": 3,
     "stride": 1, "padding": 1},
    {"name": "c2", "op": "conv", "inputs": ["c1"], "out_channels": 8, "kernel": 3,
     "stride": 2, "padding": 1},
    {"name": "pool", "op": "avgpool", "inputs": ["c2"], "kernel": 3},
    {"name": "flat", "op": "flatten", "inputs": ["pool"]},
    {"name": "fc", "op": "fc", "inputs": ["flat"], "out_features": 10},
]}


@pytest.fixture
def tiny(tmp_path):
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps(TINY))
    return str(p)


def grid(net):
    return {"network": [net], "layer": ["c1"], "acc_width": [16, 24], "overflow": ["wrap", "saturate"],
            "mix": ["8x8", "4x4"], "rows": [2], "cols": [2], "tech": ["horowitz45"]}


def fake_eval(point):
    return {**point, "key": point_key(point), "energy_pj": float(point["acc_width"]),
            "overflow_rate": 0.0, "area_um2": 1.0}


def test_expand_grid_and_keys():
    g = {"network": ["n"], "layer": ["c1"], "acc_width": [16, 24], "overflow": ["wrap"],
         "mix": ["4x4", "8x8", "4x8"], "rows": [2], "cols": [2], "tech": ["horowitz45"]}
    pts = expand_grid(g)
    assert len(pts) == 6 and list(pts[0]) == list(g)  # the grid's key order
    assert (pts[0]["acc_width"], pts[0]["mix"]) == (16, "4x4")
    assert (pts[-1]["acc_width"], pts[-1]["mix"]) == (24, "4x8")
    assert point_key({"a": 1, "b": "x"}) == point_key({"b": "x", "a": 1})
    assert point_key({"a": 1}) == point_key({"a": 1, "n": 8, "seed": 0})  # defaults
    assert point_key({"a": 1}) != point_key({"a": 2})
    with pytest.raises(ValueError, match=r"^sweep grid: mix: list should have at least 1 "
                                         r"item after validation, not 0 \(value \[\]\)$"):
        expand_grid({**g, "mix": []})
    # the accumulator width is acc_width, as everywhere (docs/formats.md)
    with pytest.raises(ValueError, match=r"^sweep grid: unknown key 'acc_bits' \(did you "
                                         r"mean 'acc_width'\?\); known keys: network, "):
        expand_grid({**{k: v for k, v in g.items() if k != "acc_width"}, "acc_bits": [16]})


def test_resume_does_not_recompute(tmp_path):
    pts = [{"acc_width": w} for w in (16, 18, 20, 22)]
    run_sweep(pts[:2], tmp_path, workers=1, progress=False, evaluate_fn=fake_eval)
    with (tmp_path / "points.jsonl").open("a") as f:
        f.write('{"key": "torn')                    # an interrupted write
    seen = []

    def count(p):
        seen.append(p["acc_width"])
        return fake_eval(p)

    rows = run_sweep(pts, tmp_path, workers=1, progress=False, evaluate_fn=count)
    assert seen == [20, 22]  # only the points not finished before
    assert [r["acc_width"] for r in rows] == [16, 18, 20, 22]
    assert len(load_done(tmp_path)) == 4
    rows = run_sweep(pts, tmp_path, workers=1, progress=False,
                     evaluate_fn=lambda p: pytest.fail("recomputed a finished point"))
    assert len(rows) == 4


def test_local_pool_real_points_tables(tiny, tmp_path):
    pts = expand_grid(grid(tiny))
    rows = run_sweep(pts, tmp_path, workers=2, progress=False)
    assert len(rows) == 8
    by = {(r["acc_width"], r["overflow"], r["mix"]): r for r in rows}
    # c1 at 8x8 has N = 36 taps: bound 8 + 8 + 6 + 1 = 23 bits; W = 16 overflows, W = 24 not
    assert by[(24, "wrap", "8x8")]["bound_bits"] == 23
    assert by[(24, "wrap", "8x8")]["overflow_rate"] == 0.0
    # W = 16 cannot hold one unsigned 8 x 8 product (65025 needs 17 signed bits): the model
    # refuses it, the point is kept but marked invalid
    assert by[(16, "saturate", "8x8")]["valid"] is False
    assert "narrower than one product" in by[(16, "saturate", "8x8")]["note"]
    assert by[(24, "wrap", "4x4")]["bound_bits"] == 4 + 4 + 6 + 1
    assert by[(16, "wrap", "4x4")]["bits_needed"] <= 15
    assert by[(16, "wrap", "4x4")]["overflow_rate"] == 0.0
    assert by[(16, "wrap", "8x8")]["area_um2"] < by[(24, "wrap", "8x8")]["area_um2"]
    assert by[(16, "wrap", "4x4")]["bitops"] * 4 == by[(16, "wrap", "8x8")]["bitops"]
    with (tmp_path / "sweep.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [r["key"] for r in table] == [r["key"] for r in rows]
    import pyarrow.parquet as pq

    pt = pq.read_table(tmp_path / "sweep.parquet").to_pylist()
    assert [r["energy_pj"] for r in pt] == [r["energy_pj"] for r in rows]


def test_dask_local_cluster(tiny, tmp_path):
    distributed = pytest.importorskip("distributed")
    pts = expand_grid(dict(grid(tiny), acc_width=[24], overflow=["wrap"]))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        rows = run_sweep(pts, tmp_path / "dask", scheduler=cluster.scheduler_address,
                         progress=False)
    local = run_sweep(pts, tmp_path / "local", workers=1, progress=False)
    assert [r["energy_pj"] for r in rows] == [r["energy_pj"] for r in local]
    assert [r["overflow_rate"] for r in rows] == [r["overflow_rate"] for r in local]


def test_pareto_and_choice():
    rows = [{"key": k, "x": x, "y": y, "overflow_rate": o, "energy_pj": y, "area_um2": a}
            for k, x, y, o, a in [("a", 0, 5, 0.0, 2), ("b", 1, 3, 0.1, 1), ("c", 2, 4, 0.0, 1),
                                  ("d", 3, 1, 0.5, 1), ("e", 0, 6, 0.0, 1)]]
    assert [r["key"] for r in pareto_front(rows, "x", "y")] == ["a", "b", "d"]
    assert choose_point(rows)["key"] == "c"                     # least energy at rate 0
    assert choose_point(rows, max_overflow_rate=0.2)["key"] == "b"
    assert choose_point([r for r in rows if r["overflow_rate"] > 0.6]) is None


def test_accumulator_sizing(tiny):
    layers, s = size_accumulators(tiny, "8x8", design=Design(rows=2, cols=2))
    bound = {r["layer"]: r["bound_bits"] for r in layers}
    assert bound == {"c1": 8 + 8 + 6 + 1, "c2": 8 + 8 + 7 + 1, "fc": 8 + 8 + 3 + 1}
    assert all(r["data_bits"] <= r["bound_bits"] for r in layers)
    assert s["W_bound"] == 24 and s["W_data"] == max(r["data_bits"] for r in layers)
    assert s["area_saved_um2"] > 0 and 0 < s["area_saved_pct"] < 100
