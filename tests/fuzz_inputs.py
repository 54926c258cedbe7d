"""Fuzz suite of the input formats (docs/formats.md), run by tests/test_fuzz_inputs.py.

Each format starts from a valid document and lets hypothesis mutate it: keys dropped,
retyped, duplicated and added (near misses of real keys too), values out of range, NaN,
infinity, huge and empty, and, for files, bytes truncated, replaced or inserted. Every
outcome must be a valid result (checked for sanity: finite, in range, accepted by the
published schema) or ONE line of ValueError/TypeError naming the file; any other
exception fails. A command-line run must exit 0, or 1 with one error line and no output
directory left behind.

Run as a script, in a process whose address space is limited (RLIMIT_AS: the size after
the imports plus :data:`HEADROOM`), so a memory blow-up is a failure too:

    python tests/fuzz_inputs.py [FORMAT ...] [--examples N]

prints, per format, how many documents it tried, how many were refused and accepted,
as one JSON line per format.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import copy
import io
import json
import math
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import numpy as np  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

HEADROOM = 1 << 30
"""Bytes of address space a format's run may add beyond its imports (1 GiB)."""

EXAMPLES = {"tech-table": 400, "sweep-grid": 300, "per-input-widths": 400, "design": 400,
            "sidecar": 300, "cli": 80, "numeric": 400, "golden-manifest": 300,
            "golden-set": 200}
"""Documents tried per format (the default of --examples)."""

WORK = Path(tempfile.mkdtemp(prefix="dqt-fuzz-"))
atexit.register(shutil.rmtree, WORK, ignore_errors=True)  # every run left its files in /tmp
_serial = iter(range(10**9))

TINY_NET = {"name": "tiny", "nodes": [
    {"name": "input", "op": "input", "shape": [4, 5, 5]},
    {"name": "c1", "op": "conv", "inputs": ["input"], "out_channels": 4, "kernel": 3,
     "padding": 1},
    {"name": "c2", "op": "conv", "inputs": ["c1"], "out_channels": 4, "kernel": 3,
     "padding": 1}]}


def shipped_tech() -> dict:
    """The shipped technology table, as a document."""
    from importlib import resources

    return json.loads((resources.files("dqt_hw.cost") / "data" / "horowitz45.json").read_text())


def fresh(suffix: str) -> Path:
    """A new file name (the technology table cache is keyed by path)."""
    return WORK / f"f{next(_serial)}{suffix}"


# ----------------------------------------------------------------------------- outcomes


class Tally:
    def __init__(self):
        self.counts = {}

    def add(self, fmt, outcome):
        c = self.counts.setdefault(fmt, {"tried": 0, "refused": 0, "accepted": 0})
        c["tried"] += 1
        c[outcome] += 1


TALLY = Tally()


def attempt(fmt, fn, *, names=None):
    """Run ``fn``: 'accepted', or 'refused' for one line of ValueError/TypeError (naming
    ``names`` when given); any other exception propagates (the fuzz test fails)."""
    try:
        result = fn()
    except (ValueError, TypeError) as e:
        msg = str(e)
        assert msg and "\n" not in msg, f"not one line: {msg!r}"
        if names is not None:
            assert names in msg, f"does not name {names!r}: {msg!r}"
        TALLY.add(fmt, "refused")
        return "refused", e
    TALLY.add(fmt, "accepted")
    return "accepted", result


# ----------------------------------------------------------------------------- mutations

KEYLIKE = st.sampled_from(["name", "n", "acc_bits", "acc_widht", "int_add_pJ", "rows ",
                           "b_act", "widths", "x", "", "__proto__", "nework", "params"])
LEAF = st.one_of(
    st.none(), st.booleans(),
    st.integers(-(2**70), 2**70), st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63), 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324, 4.7, 20.9]),
    st.text(max_size=8), st.sampled_from(["false", "true", "8", "4x4", "nan", "8.0", "-1"]))
JSONISH = st.recursive(LEAF, lambda kids: st.one_of(
    st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=5), kids, max_size=3)),
    max_leaves=6)


class Pairs(list):
    """An object written with these (key, value) pairs, duplicates included."""


def _slots(doc, path=()):
    """Every (path) of an entry inside dicts / lists of ``doc``."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield path + (k,)
            yield from _slots(v, path + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield path + (i,)
            yield from _slots(v, path + (i,))


def _get(doc, path):
    for p in path:
        doc = doc[p]
    return doc


@st.composite
def mutated(draw, base, *, extra_keys=()):
    """``base`` with 1 to 3 structural or value mutations (a deep copy)."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        slots = list(_slots(doc))
        if not slots or not isinstance(doc, dict):
            break
        path = draw(st.sampled_from(slots))
        parent, key = _get(doc, path[:-1]), path[-1]
        value = parent[key]
        op = draw(st.sampled_from(["drop", "retype", "add", "dup", "range", "nonfinite",
                                   "huge", "empty", "listify", "near"]))
        if op == "drop":
            del parent[key]
        elif op == "retype":
            parent[key] = draw(JSONISH)
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.one_of(KEYLIKE, st.sampled_from(list(extra_keys) or ["k"])))] = \
                draw(JSONISH)
        elif op == "add":
            parent.append(draw(JSONISH))
        elif op == "dup" and isinstance(parent, dict):
            pairs = Pairs(parent.items())
            pairs.append((key, draw(JSONISH)))
            if len(path) == 1:
                doc = pairs
            else:
                _get(doc, path[:-2])[path[-2]] = pairs
            break  # a Pairs is written as is: no mutation after it
        elif op == "range" and isinstance(value, (int, float)) and not isinstance(value, bool):
            parent[key] = draw(st.sampled_from([-value, 0, value * 1000, value + 0.5,
                                                -1, value - 1]))
        elif op == "nonfinite":
            parent[key] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
        elif op == "huge":
            parent[key] = draw(st.sampled_from([10**30, 2**64, 1e300, "x" * 5000,
                                                list(range(300)), [value] * 300]))
        elif op == "empty":
            parent[key] = draw(st.sampled_from([[], {}, "", None]))
        elif op == "listify":
            parent[key] = [value]
        elif op == "near" and isinstance(parent, dict) and isinstance(key, str) and key:
            del parent[key]
            parent[key[:-1] + key[-1].swapcase() if key[-1].isalpha() else key + "_"] = value
    return doc


def dumps(doc) -> str:
    """JSON text, with NaN/Infinity literals and duplicate keys where the doc has them."""
    if isinstance(doc, Pairs):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {dumps(v)}" for k, v in doc) + "}"
    if isinstance(doc, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {dumps(v)}" for k, v in doc.items()) + "}"
    if isinstance(doc, list):
        return "[" + ", ".join(dumps(v) for v in doc) + "]"
    return json.dumps(doc)


@st.composite
def damaged(draw, data: bytes):
    """``data`` as is (mostly), or truncated, with bytes replaced or inserted."""
    op = draw(st.sampled_from(["keep", "keep", "keep", "truncate", "replace", "insert",
                               "empty", "bom"]))
    if op == "truncate" and data:
        return data[:draw(st.integers(0, len(data) - 1))]
    if op == "replace" and data:
        i = draw(st.integers(0, len(data) - 1))
        return data[:i] + draw(st.binary(min_size=1, max_size=3)) + data[i + 1:]
    if op == "insert":
        i = draw(st.integers(0, len(data)))
        return data[:i] + draw(st.sampled_from([b"\x00", b"\xff\xfe", b"[[[[", b"{", b'"',
                                                 b"\n", b",", b"NaN"])) + data[i:]
    if op == "empty":
        return b""
    if op == "bom":
        return b"\xef\xbb\xbf" + data
    return data


def _settings(n):
    return settings(max_examples=n, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


# ----------------------------------------------------------------------------- formats


def fuzz_tech(n):
    from dqt_hw.cost.energy import network_energy
    from dqt_hw.cost.tech import TechTable, load_tech
    from dqt_hw.cost.workload import WidthMix, load_network
    from dqt_hw.design import Design

    base = shipped_tech()
    g, tile, mix = load_network(_tiny_path()), Design(rows=2, cols=2), WidthMix.parse("4x4")

    def sane(t):
        _, tot = network_energy(g, tile, mix, tech=t)
        assert all(math.isfinite(v) and v >= 0 for v in tot.values()), tot

    @_settings(n)
    @given(mutated(base, extra_keys=list(base)), st.data())
    def run(doc, data):
        if not isinstance(doc, Pairs):  # in memory: NaN and infinity reach the model
            out, t = attempt("tech-table", lambda: TechTable("fuzz", doc))
            if out == "accepted":
                sane(t)
        raw = data.draw(damaged(dumps(doc).encode()))
        p = fresh(".json")
        p.write_bytes(raw)
        out, t = attempt("tech-table", lambda: load_tech(str(p)), names=str(p))
        if out == "accepted":
            sane(t)

    run()


def _tiny_path():
    p = WORK / "tiny.json"
    if not p.exists():
        p.write_text(json.dumps(TINY_NET))
    return p


def fuzz_grid(n):
    from dqt_hw.sweep import check_grid_values, expand_grid, load_grid
    from dqt_hw.sweep.grid import MAX_POINTS

    base = {"network": [str(_tiny_path())], "layer": ["c1", "c2"], "acc_width": [16, 20],
            "overflow": ["wrap", "saturate"], "mix": ["4x4", "8x8"], "rows": [2],
            "cols": [2, 4], "tech": ["horowitz45"], "n": [8], "seed": [0, 1],
            "spatial": [None, 3]}

    @_settings(n)
    @given(mutated(base, extra_keys=list(base)), st.data())
    def run(doc, data):
        raw = data.draw(damaged(dumps(doc).encode()))
        p = fresh(".json")
        p.write_bytes(raw)

        def load():
            grid = load_grid(p)
            pts = expand_grid(grid, source=f"sweep grid {str(p)!r}")
            check_grid_values(grid, source=f"sweep grid {str(p)!r}")
            return pts

        out, pts = attempt("sweep-grid", load, names=str(p))
        if out == "accepted":
            assert 1 <= len(pts) <= MAX_POINTS
            assert all(isinstance(pt["acc_width"], int) and not isinstance(pt["acc_width"], bool)
                       for pt in pts)

    run()


def fuzz_widths(n):
    from dqt_hw.cost.workload import DynamicWidths, load_network
    from dqt_hw.design import Design

    g = load_network(_tiny_path())
    tile = Design(rows=2, cols=2, widths=(2, 4, 8))
    layers = [nd.name for nd in g.compute_layers()]
    rows = [{"input": str(i), "layer": layer, "b_a": str(4), "b_w": str(8)}
            for i in range(3) for layer in layers]
    cells = st.one_of(st.sampled_from(["4", "2", "8", "4.7", "", " 4", "1e3", "-1", "17",
                                       "99999999999999999999", "4x4", "true", "０", '"4"',
                                       "c1", "c9", "\x00"]), st.text(max_size=4))

    def sane(d):
        w = np.asarray(d.widths)
        assert w.dtype == np.int64 and w.shape[1:] == (len(layers), 2)
        assert set(np.unique(w)) <= set(tile.widths)

    @st.composite
    def csv_text(draw):
        rs = copy.deepcopy(rows)
        header = ["input", "layer", "b_a", "b_w"]
        for _ in range(draw(st.integers(1, 3))):
            op = draw(st.sampled_from(["cell", "cell", "header", "drop_col", "add_col",
                                       "dup_row", "short_row", "quote", "drop_row"]))
            if op == "cell":
                r = draw(st.sampled_from(rs))
                r[draw(st.sampled_from(header))] = draw(cells)
            elif op == "header":
                i = draw(st.integers(0, len(header) - 1))
                header[i] = draw(st.sampled_from(["b_act", "Input", "layer", "b_w", "", "bw"]))
            elif op == "drop_col" and len(header) > 1:
                header.pop(draw(st.integers(0, len(header) - 1)))
            elif op == "add_col":
                header.append(draw(st.sampled_from(["note", "b_a", "extra"])))
            elif op == "dup_row":
                rs.append(dict(draw(st.sampled_from(rs))))
            elif op == "drop_row" and rs:
                rs.pop(draw(st.integers(0, len(rs) - 1)))
            elif op == "short_row" and rs:
                rs[0] = {k: v for k, v in list(rs[0].items())[:2]}
            elif op == "quote" and rs:
                rs[0]["layer"] = '"' + rs[0]["layer"]
        lines = [",".join(header)]
        for r in rs:
            lines.append(",".join(str(r.get(h, "4")) for h in header[:len(header)]))
        return ("\n".join(lines) + "\n").encode()

    @st.composite
    def array_bytes(draw):
        shape = draw(st.sampled_from([(2, len(layers), 2), (1, len(layers), 2),
                                      (2, len(layers) + 1, 2), (2, len(layers)), (0, 2, 2),
                                      (2, len(layers), 3), (1, 1, len(layers), 2)]))
        dtype = draw(st.sampled_from(["int64", "int8", "uint8", "uint64", "float64", "bool",
                                      ">i4", "int16"]))
        value = draw(st.sampled_from([4, 2, 8, 0, 3, 17, 255, 4.7]))
        arr = np.full(shape, value).astype(dtype)
        buf = io.BytesIO()
        name = draw(st.sampled_from(["npy", "npy", "widths", "width", "both"]))
        if name == "npy":
            np.save(buf, arr)
            suffix = ".npy"
        else:
            arrays = {"widths": arr} if name == "widths" else \
                {"width": arr} if name == "width" else {"widths": arr, "other": arr}
            (np.savez_compressed if draw(st.booleans()) else np.savez)(buf, **arrays)
            suffix = ".npz"
        data = buf.getvalue()
        if suffix == ".npy" and draw(st.booleans()):  # a header claiming another shape
            data = data.replace(repr(shape).encode(), draw(st.sampled_from(
                [b"(1000000000000, 2, 2)", b"(2, 2, 2)", b"(-1, 2, 2)", b"()", b"(2,"])), 1)
        return draw(damaged(data)), suffix

    @_settings(n)
    @given(st.one_of(csv_text().map(lambda b: (b, ".csv")), array_bytes()), st.data())
    def run(doc, data):
        raw, suffix = doc
        if suffix == ".csv":
            raw = data.draw(damaged(raw))
        p = fresh(suffix)
        p.write_bytes(raw)
        out, d = attempt("per-input-widths", lambda: DynamicWidths.load(p, g, tile=tile),
                         names=str(p))
        if out == "accepted":
            sane(d)

    run()


def _toml(doc, prefix="") -> str:
    """A small TOML writer: scalars and arrays of scalars, sub-tables as [tables]."""
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return "nan" if v != v else ("inf" if v == math.inf else "-inf" if v == -math.inf
                                         else repr(v))
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, (dict, Pairs)):
            items = v if isinstance(v, Pairs) else v.items()
            return "{" + ", ".join(f"{json.dumps(str(k))} = {val(x)}" for k, x in items
                                   if x is not None) + "}"
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v if x is not None) + "]"
        if v is None:  # TOML has no null
            return '""'
        raise AssertionError(f"no TOML for {v!r}")
    items = doc if isinstance(doc, Pairs) else list(doc.items())
    lines, tables = [], []
    for k, v in items:
        if isinstance(v, (dict, Pairs)):
            tables.append((k, v))
        else:
            lines.append(f"{json.dumps(str(k))} = {val(v)}")
    for k, v in tables:
        lines.append(f"[{prefix}{json.dumps(str(k))}]")
        lines.append(_toml(v, prefix=f"{prefix}{json.dumps(str(k))}."))
    return "\n".join(lines) + "\n"


def fuzz_design(n):
    import tomllib

    from dqt_hw.design import Design
    from dqt_hw.design.schema import check_design_file
    from dqt_hw.design.reference import REFERENCE_DESIGNS

    bases = [tomllib.loads(d.to_toml()) for d in REFERENCE_DESIGNS]
    bases.append({"design": {"component": "pe", "params": {"acc_width": 20, "n": 4}}})

    @_settings(n)
    @given(st.sampled_from(bases).flatmap(lambda b: mutated(b, extra_keys=list(b))),
           st.data())
    def run(doc, data):
        text = _toml(doc).encode()
        raw = data.draw(damaged(text))
        p = fresh(".toml")
        p.write_bytes(raw)
        out, d = attempt("design", lambda: Design.from_toml(p), names=str(p))
        if out == "accepted":
            # the published schema accepts what the Design accepts
            check_design_file(tomllib.loads(raw.decode("utf-8")), source=str(p))
            assert isinstance(d, Design)

    run()


def _fuzz_network_base():
    """A small network with a controller, saved: (its JSON document, its .npz bytes)."""
    from dqt_hw.net import Graph, Node
    from dqt_hw.net import network as nw

    g = Graph([Node("input", "input", (), {"shape": (2, 4, 4)}),
               Node("c1", "conv", ("input",), {"out_channels": 4, "kernel": 3, "padding": 1,
                                                "relu": True}),
               Node("c2", "conv", ("c1",), {"out_channels": 4, "kernel": 3, "padding": 1,
                                             "stride": 1, "groups": 2, "relu": False}),
               Node("a", "add", ("c2", "c1"), {"relu": True}),
               Node("p", "maxpool", ("a",), {"kernel": 2, "stride": 2}),
               Node("f", "flatten", ("p",), {}),
               Node("fc", "fc", ("f",), {"out_features": 3, "relu": False})], name="fuzz")
    net = nw.random_controller(nw.random_network(g, seed=0), seed=0, hidden=4)
    path = net.save(WORK / "base_net.json")
    return json.loads(path.read_text()), path.with_suffix(".npz").read_bytes()


def fuzz_network(n):
    """A network file: its JSON mutated (keys, attributes, types, ranges), its .npz
    damaged (bytes truncated, replaced, inserted; the checksum recorded again or not) or
    one of its arrays replaced (other dtypes, shapes, values: uint64, objects, S far out of
    range)."""
    import hashlib
    import warnings

    from dqt_hw import spec
    from dqt_hw.net import network as nw

    base, npz = _fuzz_network_base()
    arrays = dict(np.load(io.BytesIO(npz)))
    attr_keys = ["dilation", "kernal", "controler", "out_channel", "padding", "stride",
                 "groups", "relu", "shape", "acc_bits", "widths", "format", "attrs"]

    def sane(net):
        assert net.arith.n == 8 and net.controller is not None
        for name in net.compute_layers():
            L = net.layers[name]
            assert L.w.dtype == np.int64 and 0 <= L.w.min() and L.w.max() <= 255
            for b in L.widths:
                K, E, S = net.requant(name, b, b).arrays()
                assert K.dtype == np.int64 and np.all(np.abs(S) <= spec.MAX_INT_BITS)

    @st.composite
    def replaced(draw):
        a = dict(arrays)
        key = draw(st.sampled_from(sorted(a)))
        kind = draw(st.sampled_from(["dtype", "shape", "value", "object", "extra", "drop"]))
        v = a[key]
        if kind == "dtype":
            with warnings.catch_warnings():  # a cast that overflows is the point
                warnings.simplefilter("ignore")
                a[key] = v.astype(draw(st.sampled_from(["uint64", "float64", "int8", ">i4",
                                                        "bool", "float16", "uint32"])))
        elif kind == "shape":
            a[key] = np.resize(v, draw(st.sampled_from([(1,), (4, 4), (3,), (2, 2, 2, 2),
                                                         (0,), (70000, 1)])))
        elif kind == "value":
            w = v.astype(np.int64) if v.dtype.kind in "iu" else v.copy()
            w.flat[0] = draw(st.sampled_from([2**63 - 1, -(2**63), 10**15, -5000, 256, -1,
                                              2**31]) if w.dtype.kind == "i" else
                             st.sampled_from([math.nan, math.inf, -1.0, 0.0, 1e308]))
            a[key] = w
        elif kind == "object":
            a[key] = np.array([{"x": 1}] * max(1, v.size), dtype=object)
        elif kind == "extra":
            a[key.replace("/", "x/")] = v
        else:
            del a[key]
        buf = io.BytesIO()
        np.savez(buf, **a)
        return buf.getvalue()

    @_settings(n)
    @given(mutated(base, extra_keys=attr_keys), st.sampled_from(["json", "npz", "array"]),
           st.booleans(), st.data())
    def run(doc, mode, rehash, data):
        p = fresh(".json")
        blob = npz
        if mode == "npz":
            blob = data.draw(damaged(npz))
        elif mode == "array":
            blob = data.draw(replaced())
            rehash = True
        if mode != "json":
            doc = copy.deepcopy(base)
        if rehash and isinstance(doc, dict) and isinstance(doc.get("tensors"), dict):
            doc["tensors"]["sha256"] = hashlib.sha256(blob).hexdigest()
        if isinstance(doc, dict) and isinstance(doc.get("tensors"), dict) \
                and doc["tensors"].get("file") == "base_net.npz":
            doc["tensors"]["file"] = p.with_suffix(".npz").name
        p.with_suffix(".npz").write_bytes(blob)
        p.write_bytes(data.draw(damaged(dumps(doc).encode())) if mode == "json"
                      else dumps(doc).encode())
        out, net = attempt("network", lambda: nw.load(p), names=p.stem)
        if out == "accepted":
            sane(net)

    run()


def fuzz_width_mix(n):
    """A width mix file (and the same mapping in memory): each pair read as a static
    ``--widths``, each layer one of the network's."""
    from dqt_hw.cost.workload import WidthMix, load_network

    g = load_network(_tiny_path())
    base = {"*": "4x4", "c1": "8x8", "c2": [8, 4]}

    def sane(m):
        for pair in [m.default] + [p for _, p in m.per_layer]:
            assert len(pair) == 2 and all(type(b) is int and 1 <= b <= 16 for b in pair)
        assert {name for name, _ in m.per_layer} <= {"c1", "c2"}

    @_settings(n)
    @given(mutated(base, extra_keys=["c1", "c2", "c3", "*", "C1", "input"]), st.data())
    def run(doc, data):
        if not isinstance(doc, Pairs):
            out, m = attempt("width-mix", lambda: WidthMix.parse(doc).check(g),
                             names="width mix")
            if out == "accepted":
                sane(m)
        p = fresh(".json")
        p.write_bytes(data.draw(damaged(dumps(doc).encode())))
        out, m = attempt("width-mix", lambda: WidthMix.parse(str(p)).check(g), names=str(p))
        if out == "accepted":
            sane(m)

    run()


def _shell_sidecar() -> dict:
    """A small sidecar with AXI ports and a register map (docs/ip.md)."""
    port = lambda n, d, w=1: {"name": n, "direction": d, "width": w, "signed": False}  # noqa
    return {"module": "shell", "component": "shell",
            "ports": [port("aclk", "input"), port("aresetn", "input"),
                      port("s_axis_tdata", "input", 32), port("s_axis_tvalid", "input"),
                      port("s_axis_tready", "output"), port("m_axis_tdata", "output", 8),
                      port("m_axis_tvalid", "output"), port("m_axis_tready", "input")],
            "parameters": {"rows": 2, "widths": [4, 8], "overflow": "wrap", "signed": False},
            "registers": [{"name": "CTRL", "offset": 0, "width": 32, "access": "rw",
                           "fields": [{"name": "go", "offset": 0, "width": 1, "reset": 0}]},
                          {"name": "ID", "offset": 4, "width": 32, "access": "ro",
                           "reset": 7, "description": "id"}]}


def fuzz_sidecar(n):
    """A JSON sidecar (reference designs', an AXI shell's with registers) for
    ``dqt-hw ipxact``: a component valid against the IEEE 1685-2014 schema (well-formed
    at least, without the ip extra), or one line naming the file; registers the reader
    accepts are accepted by the published register-map schema."""
    import xml.etree.ElementTree as ET

    from dqt_hw.ip.ipxact import component_xml, register_map_schema
    from dqt_hw.schema import read_json

    try:
        import jsonschema
        regs_ok = jsonschema.Draft202012Validator(register_map_schema()).is_valid
    except ImportError:  # pragma: no cover - the test extra has it
        regs_ok = None
    try:
        from dqt_hw.ip.xsd import load_schema, validate_xml
        load_schema()
    except ImportError:  # pragma: no cover - without the ip extra: well-formedness only
        validate_xml = None
    rtl = Path(__file__).resolve().parents[1] / "rtl"
    bases = [json.loads((rtl / f"{m}.json").read_text()) for m in ("dqt_view", "dqt_pe")]
    bases.append(_shell_sidecar())

    def make(p):
        doc = read_json(p, what="sidecar", max_bytes=1 << 24)
        return doc, component_xml(doc, source=f"sidecar {str(p)!r}")

    @_settings(n)
    @given(st.sampled_from(bases).flatmap(lambda b: mutated(b, extra_keys=list(b))),
           st.data())
    def run(doc, data):
        p = fresh(".json")
        p.write_bytes(data.draw(damaged(dumps(doc).encode())))
        out, res = attempt("sidecar", lambda: make(p), names=str(p))
        if out == "accepted":
            parsed, text = res
            ET.fromstring(text.encode())  # well-formed
            if validate_xml is not None:  # and valid IEEE 1685-2014
                validate_xml(text, source=str(p))
            if regs_ok is not None and "registers" in parsed:
                assert regs_ok(parsed["registers"]), parsed["registers"]

    run()


EXAMPLES.update({"network": 300, "width-mix": 300})


def fuzz_cli(n):
    """``dqt-hw cost`` with a fuzzed technology table or per-input table, and
    ``dqt-hw sweep`` with a fuzzed grid that the checks refuse: exit 0, or exit 1 with
    one error line and no output directory."""
    from dqt_hw.cli import main
    from dqt_hw.sweep import check_grid_values, load_grid

    tech = shipped_tech()
    grid = {"network": [str(_tiny_path())], "layer": ["c1"], "acc_width": [20],
            "overflow": ["wrap"], "mix": ["4x4"], "rows": [2], "cols": [2],
            "tech": ["horowitz45"]}
    widths = "input,layer,b_a,b_w\n0,c1,4,4\n1,c2,8,8\n"

    def run_cli(argv, out):
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            rc = main(argv)
        text = err.getvalue()
        assert rc in (0, 2), (rc, text)
        if rc == 2:
            assert text.count("\n") == 1 and text.startswith(f"dqt-hw {argv[0]}: error: "), text
            assert not out.exists(), f"{out} left behind"
            TALLY.add("cli", "refused")
        else:
            assert (out / "summary.json").exists()
            TALLY.add("cli", "accepted")

    @_settings(n)
    @given(st.sampled_from(["tech", "widths", "grid"]), st.data())
    def run(kind, data):
        out = fresh("")
        if kind == "tech":
            p = fresh(".json")
            p.write_bytes(data.draw(damaged(dumps(data.draw(mutated(tech))).encode())))
            run_cli(["cost", "--net", str(_tiny_path()), "--rows", "2", "--cols", "2",
                     "--tech", str(p), "--no-plots", "--out", str(out)], out)
        elif kind == "widths":
            p = fresh(".csv")
            text = widths.replace(data.draw(st.sampled_from(["4", "c2", "b_w", "1", ","])),
                                  data.draw(st.sampled_from(["16", "4.7", "c9", "bw", "",
                                                             "3", ",,", "8"])), 1)
            p.write_bytes(data.draw(damaged(text.encode())))
            run_cli(["cost", "--net", str(_tiny_path()), "--rows", "2", "--cols", "2",
                     "--supported", "2,4,8", "--per-input", str(p), "--no-plots",
                     "--out", str(out)], out)
        else:
            p = fresh(".json")
            p.write_bytes(data.draw(damaged(dumps(data.draw(mutated(grid))).encode())))
            try:  # an accepted grid would run a sweep: only refused ones go to the CLI
                g = load_grid(p)
                check_grid_values(g)
                return
            except (ValueError, TypeError):
                pass
            run_cli(["sweep", "--grid", str(p), "--out", str(out), "--no-progress",
                     "--workers", "1"], out)

    run()


def fuzz_numeric(n):
    from dqt_hw import spec
    from dqt_hw.cli import build_parser

    fmt = spec.fit_format(-1.0, 1.0, 8)
    parser = build_parser()
    options = {"--workers": (1, None), "--spatial": (1, 4096),
               "--max-overflow-rate": (0.0, 1.0)}

    @_settings(n)
    @given(st.sampled_from(["quantize", "round_shift", "option"]), st.data())
    def run(kind, data):
        if kind == "quantize":
            x = data.draw(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=5))
            out, q = attempt("numeric", lambda: spec.quantize(x, fmt))
            if out == "accepted":
                lo, hi = fmt.code_range()
                assert all(lo <= int(v) <= hi for v in np.ravel(q))
        elif kind == "round_shift":
            s = data.draw(st.one_of(st.integers(-5000, 5000), st.integers(-10**20, 10**20)))
            x = data.draw(st.integers(-(2**70), 2**70))
            r = data.draw(st.sampled_from(spec.ROUNDINGS))
            out, v = attempt("numeric", lambda: spec.round_shift(x, s, r))
            if out == "accepted":
                assert abs(s) <= 4096 and isinstance(v, int)
        else:
            opt = data.draw(st.sampled_from(sorted(options)))
            text = data.draw(st.one_of(st.sampled_from(["0", "-5", "nan", "inf", "1e9", "2.5",
                                                        "", "4", "1", "0.5", "-0"]),
                                       st.text(max_size=5)))
            err = io.StringIO()
            try:
                with contextlib.redirect_stderr(err):
                    a = parser.parse_args(["sweep", opt, text])
            except SystemExit as e:
                assert e.code == 2 and f"error: argument {opt}: " in err.getvalue()
                TALLY.add("numeric", "refused")
                return
            v = getattr(a, opt[2:].replace("-", "_"))
            lo, hi = options[opt]
            assert math.isfinite(v) and lo <= v and (hi is None or v <= hi), (opt, text, v)
            TALLY.add("numeric", "accepted")

    run()


GOLDEN_CASES = ("gemm_8x64x8_w20_wrap", "view_n8_floor")
"""Real small cases of golden/ that the golden formats start from."""


def _golden_base() -> Path:
    """A set of two checked-in cases (with its set.json) under WORK."""
    from dqt_hw.golden.io import write_set_manifest

    base = WORK / "golden-base"
    if not base.exists():
        import shutil

        base.mkdir()
        for name in GOLDEN_CASES:
            shutil.copytree(HERE.parent / "golden" / name, base / name)
        write_set_manifest(base, GOLDEN_CASES)
    return base


def _golden_set(fmt, change):
    """A fresh copy of the base set changed by ``change(root)``, then read_set: a valid
    result (arrays int64, plane arrays uint64, of their declared shapes, within the element bound; the model
    recomputes them or refuses in one line) or one ValueError line naming the set."""
    import shutil

    from dqt_hw.golden import MAX_ELEMENTS, read_set, verify_case

    root = fresh("")
    shutil.copytree(_golden_base(), root)
    change(root)
    out, cases = attempt(fmt, lambda: read_set(root), names=str(root))
    if out == "accepted":
        for c in cases:
            for name, a in c.arrays.items():
                want = np.uint64 if name.endswith("_planes") else np.int64  # plane words
                assert a.dtype == want and a.size <= MAX_ELEMENTS
                assert list(a.shape) == c.manifest["arrays"][name]["shape"]
            try:
                verify_case(c)
            except (ValueError, TypeError) as e:
                assert str(e) and "\n" not in str(e), f"not one line: {e!r}"


def _resign(root, draw):
    """set.json's checksums made to match (mostly), so the damage reaches the case."""
    from dqt_hw.golden.io import write_set_manifest

    if draw(st.integers(0, 9)):
        write_set_manifest(root, sorted(p.name for p in root.iterdir() if p.is_dir()))


def fuzz_golden_manifest(n):
    """manifest.json mutated, or its .npy / .hex bytes damaged, the header's shape, bits
    or shape made huge; the checksums updated to match (mostly)."""
    import hashlib

    huge = st.sampled_from([[10**12], [10**6, 10**6], [2**40, 2**40], [-1], [], [0], [1] * 9,
                            [2**63], [8, 8, 1]])
    bits = st.sampled_from([0, 1, 24, 63, 64, 65, 2**64, -1, 20.9, "20", True, None])

    @_settings(n)
    @given(st.sampled_from(GOLDEN_CASES),
           st.sampled_from(["manifest", "manifest", "file", "file", "header", "bits", "shape",
                            "keep"]), st.data())
    def run(case, op, data):
        def change(root):
            cdir = root / case
            mp = cdir / "manifest.json"
            man = json.loads(mp.read_text())
            name = data.draw(st.sampled_from(sorted(man["arrays"])))
            ent = man["arrays"][name]
            if op == "manifest":
                doc = data.draw(mutated(man, extra_keys=["arrays", "bits", "shape", "sha256"]))
                mp.write_bytes(data.draw(damaged(dumps(doc).encode())))
            elif op in ("file", "header"):
                key = data.draw(st.sampled_from(["file", "hex"])) if op == "file" else "file"
                f = cdir / ent[key]
                raw = f.read_bytes()
                if op == "header":
                    raw = raw.replace(repr(tuple(ent["shape"])).encode(), data.draw(
                        st.sampled_from([b"(1000000000000,)", b"(-1, 8)", b"()", b"(2,"])), 1)
                else:
                    raw = data.draw(damaged(raw))
                f.write_bytes(raw)
                if data.draw(st.booleans()):
                    sha = "sha256" if key == "file" else "hex_sha256"
                    ent[sha] = hashlib.sha256(raw).hexdigest()
                    mp.write_text(json.dumps(man))
            elif op in ("bits", "shape"):
                ent[op] = data.draw(bits if op == "bits" else huge)
                if op == "bits" and isinstance(ent["bits"], int) and 1 <= ent["bits"] <= 64:
                    from dqt_hw.golden import hex_text

                    arr = np.load(cdir / ent["file"])
                    with contextlib.suppress(ValueError):
                        hx = hex_text(arr, ent["bits"], ent["signed"]).encode()
                        (cdir / ent["hex"]).write_bytes(hx)
                        ent["hex_sha256"] = hashlib.sha256(hx).hexdigest()
                mp.write_text(json.dumps(man))
            if op != "keep":
                _resign(root, data.draw)

        _golden_set("golden-manifest", change)

    run()


def fuzz_golden_set(n):
    """set.json mutated or damaged; hidden, temporary, manifest-less, extra, missing,
    renamed and linked case directories."""
    import shutil

    @_settings(n)
    @given(st.sampled_from(["set", "set", "set", "hidden", "bare", "remove", "extra", "rename",
                            "link", "keep", "keep"]), st.sampled_from(GOLDEN_CASES), st.data())
    def run(op, case, data):
        def change(root):
            sp = root / "set.json"
            if op == "set":
                doc = data.draw(mutated(json.loads(sp.read_text()),
                                        extra_keys=["cases", "design", "manifest_sha256"]))
                sp.write_bytes(data.draw(damaged(dumps(doc).encode())))
            elif op in ("hidden", "bare"):
                d = root / (f".{case}.{data.draw(st.text('abc123', max_size=6))}"
                            if op == "hidden" else "junk")
                d.mkdir()
                if data.draw(st.booleans()):
                    shutil.copy(root / case / "manifest.json", d / "manifest.json")
            elif op == "remove":
                shutil.rmtree(root / case)
            elif op in ("extra", "rename"):
                new = root / data.draw(st.sampled_from(["extra", "x.y", case + "_2"]))
                (shutil.copytree if op == "extra" else os.rename)(root / case, new)
                if data.draw(st.booleans()):
                    _resign(root, data.draw)
            elif op == "link":
                (root / "linked").symlink_to(root / case)

        _golden_set("golden-set", change)

    run()


FORMATS = {"tech-table": fuzz_tech, "sweep-grid": fuzz_grid, "per-input-widths": fuzz_widths,
           "design": fuzz_design, "sidecar": fuzz_sidecar, "cli": fuzz_cli,
           "numeric": fuzz_numeric, "golden-manifest": fuzz_golden_manifest,
           "golden-set": fuzz_golden_set}


def limit_memory() -> int:
    """Limit the address space to what the process maps now plus HEADROOM; the limit."""
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    lim = vm + HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (lim, resource.getrlimit(resource.RLIMIT_AS)[1]))
    return lim


FORMATS.update({"network": fuzz_network, "width-mix": fuzz_width_mix})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("formats", nargs="*", metavar="FORMAT",
                   help=f"some of {', '.join(FORMATS)} (default: all)")
    p.add_argument("--examples", type=int, default=None)
    p.add_argument("--probe", action="store_true",
                   help="only check that the memory limit holds: allocating HEADROOM "
                        "+ 64 MiB must fail")
    args = p.parse_args(argv)
    unknown = [f for f in args.formats if f not in FORMATS]
    if unknown:
        p.error(f"unknown formats {unknown} (known: {', '.join(FORMATS)})")
    import conftest  # noqa: F401  (registers and loads the hypothesis profile: CI derandomizes)
    # import everything a run touches before the limit
    import dqt_hw.cli  # noqa: F401
    import dqt_hw.cost.energy  # noqa: F401
    import dqt_hw.design.schema  # noqa: F401
    import dqt_hw.golden  # noqa: F401
    import dqt_hw.ip.ipxact  # noqa: F401
    try:  # the IEEE 1685-2014 schema (the ip extra), loaded before the limit
        from dqt_hw.ip.xsd import load_schema
        load_schema()
    except ImportError:
        pass
    import dqt_hw.sweep  # noqa: F401
    import matplotlib.pyplot  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    lim = limit_memory()
    if args.probe:
        try:
            block = bytearray(HEADROOM + (1 << 26))
            print(json.dumps({"probe": "allocated", "bytes": len(block)}))
        except MemoryError:
            print(json.dumps({"probe": "MemoryError", "address_space_limit": lim}))
        return 0
    for fmt in args.formats or list(FORMATS):
        t0 = time.perf_counter()
        FORMATS[fmt](args.examples or EXAMPLES[fmt])
        c = TALLY.counts.get(fmt, {"tried": 0, "refused": 0, "accepted": 0})
        print(json.dumps({"format": fmt, **c, "seconds": round(time.perf_counter() - t0, 1),
                          "address_space_limit": lim}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
