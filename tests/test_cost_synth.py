"""Synthesis results: parsing Yosys's statistics, the fitted area model, the baseline.

The parser and fit tests read recorded files (no Yosys needed). One test synthesizes the
smallest reference configurations and compares them with the baseline within
``BASELINE_TOLERANCE``; it is skipped only when Debian's yosys is absent.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources

import pytest

from dqt_hw.cost.area import FEATURES, features, load_area_model
from dqt_hw.cost.synth import (BASELINE_TOLERANCE, YosysError, compare_baseline, load_baseline,
                               parse_stat_json)

DATA = resources.files("dqt_hw.cost") / "data"

AREA_FIT_TOLERANCE_PCT = 25.0
"""Stated error of the fitted analytic area model: every synthesized configuration within
25 % of its Yosys transistor count (docs/cost.md lists the error of each)."""


def test_parse_recorded_stat():
    text = (DATA / "recorded_stat_dqt_view.json").read_text()
    cells, by_type, tr = parse_stat_json(text, "dqt_view")
    assert cells == sum(by_type.values()) == 151
    assert tr == 676
    # CMOS gate costs (yosys kernel/cost.h): NOT 2, NAND/NOR 4, AOI3/OAI3 6, AOI4/OAI4 8,
    # XOR/XNOR 12 (the recorded unit has no other cells)
    cost = {"$_NOT_": 2, "$_NAND_": 4, "$_NOR_": 4, "$_AOI3_": 6, "$_OAI3_": 6,
            "$_AOI4_": 8, "$_OAI4_": 8, "$_XOR_": 12, "$_XNOR_": 12, "$_ANDNOT_": 4,
            "$_ORNOT_": 4}
    if set(by_type) <= set(cost):
        assert sum(cost[k] * v for k, v in by_type.items()) == tr


def test_missing_or_incomplete_stat_is_an_error():
    doc = json.loads((DATA / "recorded_stat_dqt_view.json").read_text())
    mod = doc["modules"]["\\dqt_view"]
    mod["estimated_num_transistors"] = "3040+"
    with pytest.raises(YosysError, match=r"incomplete \('3040\+'\)"):
        parse_stat_json(json.dumps(doc), "dqt_view")
    del mod["estimated_num_transistors"]
    with pytest.raises(YosysError, match="no transistor estimate"):
        parse_stat_json(json.dumps(doc), "dqt_view")
    with pytest.raises(YosysError, match="no module 'dqt_tile'"):
        parse_stat_json(json.dumps(doc), "dqt_tile")
    with pytest.raises(YosysError, match="not JSON"):
        parse_stat_json("", "dqt_view")


def test_features_by_hand():
    # an 8 x 8 PE, W = 24, no views: 64 partial products, 24 adder bits, 48 flip-flops,
    # 24 first-term gates; saturate adds 2 x 24 compares with constants and 48 mux bits
    zero = dict.fromkeys(FEATURES, 0)
    assert features("pe", {"n": 8, "acc_width": 24, "views": False}) == \
        dict(zero, ff=48, fa=24, pp=64, mux=24)
    assert features("pe", {"n": 8, "acc_width": 24, "views": False, "overflow": "saturate"}) == \
        dict(zero, ff=48, fa=24, hc=48, pp=64, mux=72)
    assert features("cal_add", {"width": 8}) == dict(zero, fa=8)
    # floor view, n = 4, widths 1..4: output bit i chooses among the 4 - i widths that keep
    # it, (4 - i) - 1 multiplexers: 3 + 2 + 1 + 0, plus n zero-default gates
    assert features("view", {"n": 4, "view_rounding": "floor"}) == dict(zero, mux=10)
    assert features("cal_mul", {"width": 8}) == dict(zero, pp=64)


def test_fitted_area_model_within_stated_error():
    m = load_area_model()
    assert set(m.coeffs) == set(FEATURES)
    assert all(v >= 0 for v in m.coeffs.values())
    assert m.um2_per_transistor > 0
    worst = max(abs(p["error_pct"]) for p in m.fit["per_config"])
    assert worst <= AREA_FIT_TOLERANCE_PCT, m.fit["per_config"]
    base = load_baseline()
    for p in m.fit["per_config"]:  # the fit was made on the baseline's results
        assert p["measured_transistors"] == base[p["name"]]["transistors"]


def test_baseline_comparison_logic():
    base = {"a": {"name": "a", "transistors": 1000, "cells": 100}}
    ok = [{"name": "a", "transistors": 1000 + int(1000 * BASELINE_TOLERANCE), "cells": 100}]
    assert compare_baseline(ok, base) == []
    moved = [{"name": "a", "transistors": 1100, "cells": 100}]
    assert compare_baseline(moved, base) == [
        "a: transistors moved from 1000 to 1100 (+10.0 %, tolerance 2 %)"]
    assert compare_baseline([{"name": "b", "transistors": 1, "cells": 1}], base) == [
        "b: not in the baseline"]


def _debian_yosys():
    exe = shutil.which("yosys")
    return exe if exe and "yowasp" not in exe else None


@pytest.mark.skipif(_debian_yosys() is None, reason="Debian's yosys is not installed")
def test_small_configs_match_baseline():
    """An area regression in the view unit or the baseline rescale unit fails here."""
    from dqt_hw.cost.synth import fit_configs, synthesize

    names = {"dqt_view", "fit_view_n8_floor", "fit_rescale_n4_m8"}
    cfgs = [c for c in fit_configs() if not isinstance(c, str) and c.name in names]
    assert len(cfgs) == len(names)
    results = [synthesize(c) for c in cfgs]
    assert compare_baseline(results, load_baseline()) == []
