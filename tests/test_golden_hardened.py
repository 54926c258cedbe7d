"""Golden-vector sets as untrusted input (golden/README.md, "Reading a set safely"): every
class of bad manifest, set manifest, array and hex file is refused with one ValueError
line naming the file, the field and the value, before anything it merely claims is read
or allocated; a writer killed at any point leaves the old set, a set that does not
verify, or the new one, never one that verifies with a mixture."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pathlib
import shutil
import signal
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from dqt_hw import golden
from dqt_hw.cli import main
from dqt_hw.golden import read_case, read_set, read_set_manifest, update_set, write_set
from dqt_hw.golden.io import hex_text, write_set_manifest

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
GEMM = {"a_bits": 8, "a_signed": False, "w_bits": 8, "w_signed": False, "acc_width": 20,
        "overflow": "wrap", "seed": 0}


def gemm_case(name, seed, shape=(3, 5, 2)):
    """A small gemm case of seeded 8-bit codes (acc by the model, W = 20 wrap)."""
    M, K, N = shape
    rng = np.random.default_rng(seed)
    return golden.build_case(name, "gemm", {**GEMM, "seed": seed},
                             {"a": rng.integers(0, 256, (M, K)), "w": rng.integers(0, 256, (K, N))})


@pytest.fixture
def gset(tmp_path):
    """A set of two small cases: 'g' (gemm) and 'v' (nested_view)."""
    view = golden.build_case("v", "nested_view", {"n": 4, "signed": False, "rounding": "floor",
                                                  "widths": [2, 4]}, {"q": np.arange(16)})
    return write_set(tmp_path / "set", [gemm_case("g", 1), view], source={"test": "hardened"})


def edit(case_dir: Path, fn, resign=True):
    """Change a case's manifest.json with ``fn`` (and set.json's checksum of it)."""
    p = case_dir / "manifest.json"
    m = json.loads(p.read_text())
    fn(m)
    p.write_text(json.dumps(m))
    if resign:
        _resign(case_dir.parent)


def _resign(root: Path):
    write_set_manifest(root, [p.name for p in root.iterdir() if (p / "manifest.json").exists()],
                       source={"test": "hardened"})


def replace_file(case_dir: Path, array: str, suffix: str, data: bytes):
    """Replace an array's .npy or .hex file and its checksums (so only the content is bad)."""
    (case_dir / f"{array}{suffix}").write_bytes(data)
    key = "sha256" if suffix == ".npy" else "hex_sha256"
    edit(case_dir, lambda m: m["arrays"][array].update({key: hashlib.sha256(data).hexdigest()}))


def refused(root, pattern):
    with pytest.raises(ValueError, match=pattern) as e:
        read_set(root)
    assert "\n" not in str(e.value)
    return str(e.value)


MAN = r"golden case manifest '[^']*/g/manifest\.json': "


# ----------------------------------------------------------------------------- manifest.json


@pytest.mark.parametrize("fn, pattern", [
    (lambda m: m["arrays"]["acc"].update(signed="false"),
     r"arrays\.acc\.signed: input should be a valid boolean, not 'false'$"),
    (lambda m: m["arrays"]["acc"].update(bits=20.9),
     r"arrays\.acc\.bits: input should be a valid integer, not 20\.9$"),
    (lambda m: m["arrays"]["acc"].update(bits=65),
     r"arrays\.acc\.bits: input should be less than or equal to 64, not 65$"),
    (lambda m: m["arrays"]["acc"].update(bits=0),
     r"arrays\.acc\.bits: input should be greater than or equal to 1, not 0$"),
    (lambda m: m["arrays"]["acc"].update(dtype="int32"),
     r"arrays\.acc\.dtype: input should be 'int64' or 'uint64', not 'int32'$"),
    (lambda m: m["arrays"]["acc"].update(shape=[-1, 2]),
     r"arrays\.acc\.shape\[0\]: input should be greater than or equal to 0, not -1$"),
    (lambda m: m["arrays"]["acc"].update(shape=[10**6, 10**6]),
     r"arrays\.acc\.shape: declares 1000000000000 elements, more than the 16777216 an array "
     r"may hold, not \[1000000, 1000000\]$"),
    (lambda m: m["arrays"]["acc"].update(shape=[1] * 9),
     r"arrays\.acc\.shape: list should have at most 8 items after validation, not 9"),
    (lambda m: m["arrays"]["acc"].update(sha256="A" * 64),
     r"arrays\.acc\.sha256: string should match pattern '\^\[0-9a-f\]\{64\}\$', not 'AAAA"),
    (lambda m: m["arrays"]["acc"].update(hex_sha256="0" * 63),
     r"arrays\.acc\.hex_sha256: string should match pattern"),
    (lambda m: m["arrays"]["acc"].update(hex_sha=1),
     r"unknown key 'hex_sha' in arrays\.acc \(did you mean 'hex_sha256'\?\); known keys: file, "),
    (lambda m: m.update(kinds="gemm"),
     r"unknown key 'kinds' \(did you mean 'kind'\?\); known keys: format, format_version, "),
    (lambda m: m["params"].update(acc_widht=m["params"].pop("acc_width")),
     r"unknown key 'acc_widht' in params \(did you mean 'acc_width'\?\)"),
    (lambda m: m.update(format="dqt_hw-golden-set"),
     r"format: input should be 'dqt_hw-golden', not 'dqt_hw-golden-set'$"),
    (lambda m: m.update(format_version=1, kinds="x"),
     r"format_version: input should be 2, not 1$"),
    (lambda m: m.update(contract_version="9.9"),
     r"contract_version: input should be '1\.0', not '9\.9'$"),
    (lambda m: m.update(kind="gem"),
     r"kind: input should be 'nested_view', 'gemm', 'dense_layer' or 'conv_layer', not 'gem'$"),
    (lambda m: m["params"].update(acc_width="20"),
     r"params\.acc_width: input should be a valid integer, not '20'$"),
    # the model computes every golden result, so the bound is the model's (spec), not 64
    (lambda m: m["params"].update(acc_width=49),
     r"params\.acc_width: input should be less than or equal to 48, not 49$"),
    (lambda m: m["params"].update(overflow="clip"),
     r"params\.overflow: input should be 'wrap', 'saturate' or 'trap', not 'clip'$"),
    (lambda m: m.update(case="other"),
     r"case: 'other' is not the name of its directory 'g'$"),
    (lambda m: m["arrays"].pop("acc"),
     r"arrays: a gemm case has the arrays \['a', 'acc', 'w'\], not \['a', 'w'\] "
     r"\(missing \['acc'\]\)$"),
    (lambda m: m["arrays"]["acc"].update(file="a.npy"),
     r"arrays\.acc\.file: must be 'acc\.npy', not 'a\.npy'$"),
    (lambda m: m["arrays"]["acc"].update(hex="../acc.hex"),
     r"arrays\.acc\.hex: string should match pattern"),
    (lambda m: m["arrays"]["acc"].update(bits=24),
     r"arrays\.acc: 24 bits signed, the case's params make 20 bits signed$"),
    (lambda m: m["extra"]["stats"].update(events=-1),
     r"extra\.stats\.events: input should be greater than or equal to 0, not -1$"),
])
def test_manifest_refusals(gset, fn, pattern):
    edit(gset / "g", fn)
    refused(gset, MAN + pattern)


def test_manifest_as_a_file(gset):
    m = gset / "g" / "manifest.json"
    m.write_text('{"format": "dqt_hw-golden", "format": "x"}')
    _resign(gset)
    refused(gset, MAN + r"not valid JSON: duplicate key 'format'$")
    m.write_text('{"bits": NaN}')
    _resign(gset)
    refused(gset, MAN + r"not valid JSON: NaN is not a JSON number$")
    m.write_text("[]")
    _resign(gset)
    refused(gset, MAN + r"the document: input should be a valid dictionary or instance of "
                        r"GemmCase|CaseManifest")
    m.write_bytes(b" " * ((1 << 20) + 1))
    refused(gset, r"golden case manifest file '[^']*manifest\.json' has 1048577 bytes, more "
                  r"than the 1048576 this format allows$")


def test_manifest_checksum_is_checked_before_it_is_parsed(gset):
    edit(gset / "g", lambda m: m["params"].update(seed=7), resign=False)
    refused(gset, r"g/manifest\.json: sha256 [0-9a-f]{64} does not match set\.json's "
                  r"[0-9a-f]{64}$")


# ----------------------------------------------------------------------------- .npy files


def _npy(a, **kw):
    buf = io.BytesIO()
    np.save(buf, a, **kw)
    return buf.getvalue()


def test_npy_size_is_checked_against_the_shape_before_reading(gset):
    raw = (gset / "g" / "acc.npy").read_bytes()
    replace_file(gset / "g", "acc", ".npy", raw[:-8])
    refused(gset, r"g/acc\.npy: has 40 bytes of data, an int64 array of shape \[3, 2\] takes "
                  r"48$")
    replace_file(gset / "g", "acc", ".npy", raw + b"\0" * 5000)
    refused(gset, rf"g/acc\.npy: has {len(raw) + 5000} bytes, an int64 array of shape \[3, 2\] "
                  rf"takes 48 and a header of at most 4096$")
    replace_file(gset / "g", "acc", ".npy", b"\x93NUMPY")
    refused(gset, r"g/acc\.npy: has 6 bytes, an int64 array of shape \[3, 2\] takes 48 and")


def test_npy_header_claiming_1e12_elements_is_refused_without_allocating(gset):
    raw = (gset / "g" / "acc.npy").read_bytes()
    huge = raw.replace(b"(3, 2)", b"(1000000000000,)", 1)
    replace_file(gset / "g", "acc", ".npy", huge)
    tracemalloc.start()
    try:
        refused(gset, r"g/acc\.npy: holds int64 \[1000000000000\], the manifest says int64 "
                      r"\[3, 2\] \(little-endian, C order\)$")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak


@pytest.mark.parametrize("data, pattern", [
    (lambda a: _npy(a.astype(">i8")), r"holds >i8 \[3, 2\], the manifest says int64 \[3, 2\]"),
    (lambda a: _npy(np.asfortranarray(a)),
     r"holds int64 \[3, 2\] in Fortran order, the manifest says int64"),
    (lambda a: _npy(a.astype(np.int32)), r"holds <i4 \[3, 2\], the manifest says int64"),
    (lambda a: _npy(a.reshape(6)), r"holds int64 \[6\], the manifest says int64 \[3, 2\]"),
    (lambda a: _npy(a.astype(np.float64)), r"holds <f8 \[3, 2\], the manifest says int64"),
    (lambda a: _npy(np.array([{"x": 1}] * 6, dtype=object).reshape(3, 2), allow_pickle=True),
     r"is not a plain \.npy array: it holds Python objects, which are never unpickled "
     r"\(allow_pickle=False\)$"),
    (lambda a: b"\x93NUMPY\x03\x00" + _npy(a)[8:],
     r"is not a plain \.npy array: npy format version \(3, 0\) is not read"),
    (lambda a: b"NOTNUMPY" + _npy(a)[8:], r"is not a plain \.npy array: "),
])
def test_npy_content_refusals(gset, data, pattern):
    a = read_case(gset / "g")["acc"]
    replace_file(gset / "g", "acc", ".npy", data(a))
    refused(gset, r"g/acc\.npy:? " + pattern)  # "is not a plain" reads without the colon


def test_npy_checksum_link_and_missing_file(gset, tmp_path):
    raw = bytearray((gset / "g" / "acc.npy").read_bytes())
    raw[-1] ^= 1
    (gset / "g" / "acc.npy").write_bytes(bytes(raw))
    refused(gset, r"g/acc\.npy: sha256 [0-9a-f]{64} does not match the manifest's [0-9a-f]{64}$")
    (gset / "g" / "acc.npy").unlink()
    refused(gset, r"g/acc\.npy: missing \(named by the manifest\)$")
    shutil.copy(GOLDEN / "gemm_8x64x8_w20_wrap" / "acc.npy", tmp_path / "elsewhere.npy")
    (gset / "g" / "acc.npy").symlink_to(tmp_path / "elsewhere.npy")
    refused(gset, r"g/acc\.npy: a link, not a plain file in the case directory$")


# ----------------------------------------------------------------------------- .hex files


def test_hex_written_at_24_bits_does_not_verify_for_a_20_bit_case(gset):
    acc = read_case(gset / "g")["acc"]
    replace_file(gset / "g", "acc", ".hex", hex_text(acc, 24, True).encode())
    refused(gset, r"g/acc\.hex: has 42 bytes, 6 values of 20 bits take 36 \(ceil\(20 / 4\) = 5 "
                  r"hex digits and a newline each\); its first line has 6 characters$")
    # and declaring 24 bits in the manifest too: the case's acc_width says 20
    edit(gset / "g", lambda m: m["arrays"]["acc"].update(bits=24))
    refused(gset, MAN + r"arrays\.acc: 24 bits signed, the case's params make 20 bits signed$")


def test_hex_lines_must_equal_the_npy_values(gset):
    case = read_case(gset / "g")
    text = hex_text(case["acc"], 20, True).splitlines()
    v = int(case["acc"].ravel()[1])
    text[1] = f"{(v + 1) & 0xFFFFF:05x}"
    replace_file(gset / "g", "acc", ".hex", ("\n".join(text) + "\n").encode())
    refused(gset, rf"g/acc\.hex: line 2 is '{text[1]}', the \.npy value {v} in 20 bits is "
                  rf"'{v & 0xFFFFF:05x}'$")
    upper = hex_text(case["acc"], 20, True).upper()
    if upper != hex_text(case["acc"], 20, True):
        replace_file(gset / "g", "acc", ".hex", upper.encode())
        refused(gset, r"g/acc\.hex: line \d+ is '[0-9A-F]{5}'")


def test_npy_values_outside_the_declared_bits(gset):
    a = read_case(gset / "g")["a"].copy()
    a[0, 0] = 300  # beyond 8 bits unsigned: the .npy checksum updated, the hex the old one
    replace_file(gset / "g", "a", ".npy", _npy(a))
    refused(gset, r"g/a\.hex: the \.npy values in \[\d+, 300\] do not fit unsigned 8 bits "
                  r"\(\[0, 255\]\)$")


def test_hex_checksum(gset):
    raw = bytearray((gset / "g" / "acc.hex").read_bytes())
    raw[0] = ord("f") if raw[0] != ord("f") else ord("e")
    (gset / "g" / "acc.hex").write_bytes(bytes(raw))
    refused(gset, r"g/acc\.hex: sha256 [0-9a-f]{64} does not match the manifest's [0-9a-f]{64}$")


# ----------------------------------------------------------------------------- the set


def test_set_requires_set_json(gset):
    (gset / "set.json").unlink()
    refused(gset, r"/set: no set\.json \(every golden set has one: `dqt-hw golden write` and "
                  r"`dqt-hw golden canonical` write it; a single case directory has a "
                  r"manifest\.json instead\)$")
    assert read_case(gset / "g").kind == "gemm"  # a single case needs none


def test_checked_in_golden_set_has_set_json_and_reads():
    assert (GOLDEN / "set.json").is_file()
    doc = read_set_manifest(GOLDEN)
    assert sorted(doc["cases"]) == sorted(c.manifest["case"] for c in read_set(GOLDEN))


SET = r"golden set manifest '[^']*/set/set\.json': "


@pytest.mark.parametrize("change, pattern", [
    (lambda d: (d / ".g.x1y2z3").mkdir(),
     r"/set/\.g\.x1y2z3: a hidden or temporary directory in a golden set \(an interrupted "
     r"write leaves one: write the set again\)$"),
    (lambda d: (d / "junk").mkdir(),
     r"/set/junk: a directory without a manifest\.json in a golden set$"),
    (lambda d: shutil.rmtree(d / "v"),
     SET + r"lists the cases \['v'\], which the directory lacks$"),
    (lambda d: shutil.copytree(d / "g", d / "g2"),
     SET + r"does not list the case directories \['g2'\]$"),
    (lambda d: (d / "g").rename(d / "h"),
     SET + r"lists the cases \['g'\], which the directory lacks; does not list the case "
           r"directories \['h'\]$"),
    (lambda d: (d / "link").symlink_to(d / "g"),
     r"/set/link: a link in a golden set \(cases are plain directories\)$"),
])
def test_set_directory_refusals(gset, change, pattern):
    change(gset)
    refused(gset, pattern)
    with pytest.raises(ValueError, match=pattern):
        read_set_manifest(gset)


def _edit_set(root, fn):
    p = root / "set.json"
    d = json.loads(p.read_text())
    fn(d)
    p.write_text(json.dumps(d))


@pytest.mark.parametrize("fn, pattern", [
    (lambda d: d.update(sources=d.pop("source")),
     r"unknown key 'sources' \(did you mean 'source'\?\); known keys: format, format_version, "),
    (lambda d: d["cases"]["g"].update(manifest_sha256=d["cases"]["g"]["manifest_sha256"].upper()),
     r"cases\.g\.manifest_sha256: string should match pattern '\^\[0-9a-f\]\{64\}\$'"),
    (lambda d: d["cases"].update({".hidden": d["cases"]["g"]}),
     r"cases\.\.hidden \(a key\): string should match pattern"),
    (lambda d: d.update(cases={}),
     r"cases: dictionary should have at least 1 item after validation, not 0 \(value \{\}\)$"),
    (lambda d: d.update(format="dqt_hw-golden"),
     r"format: input should be 'dqt_hw-golden-set', not 'dqt_hw-golden'$"),
    (lambda d: d.update(format_version=3), r"format_version: input should be 2, not 3$"),
    (lambda d: d.update(design={"acc_width": "20"}),
     r"design\.acc_width: input should be a valid integer, not '20'$"),
    (lambda d: d.update(design={"acc_bits": 20}),
     r"unknown key 'acc_bits' in design \(did you mean 'acc_width'\?\)"),
])
def test_set_manifest_refusals(gset, fn, pattern):
    _edit_set(gset, fn)
    refused(gset, SET + pattern)


def test_set_manifest_checksum_of_a_case(gset):
    _edit_set(gset, lambda d: d["cases"]["v"].update(manifest_sha256="0" * 64))
    refused(gset, r"/set/v/manifest\.json: sha256 [0-9a-f]{64} does not match set\.json's 0{64}$")


def test_writer_refuses_what_the_reader_would(tmp_path):
    c = gemm_case("g", 1)
    bad = golden.GoldenArray(c.arrays["acc"].data, 24, True)
    with pytest.raises(ValueError, match=r"golden case 'g': arrays\.acc: 24 bits signed, the "
                                         r"case's params make 20 bits signed$"):
        golden.write_case(tmp_path, "g", kind="gemm", params=c.params,
                          arrays={**c.arrays, "acc": bad})
    with pytest.raises(ValueError, match=r"golden case '\.g': case: string should match "
                                         r"pattern"):
        golden.write_case(tmp_path, ".g", kind="gemm", params=c.params, arrays=c.arrays)
    with pytest.raises(ValueError, match=r"golden set '[^']*/s': no cases to write \(a set "
                                         r"holds at least one\)$"):
        write_set(tmp_path / "s", [])
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- commands


def test_golden_verify_and_sim_print_one_line_and_exit_2(gset, capsys):
    (gset / ".g.tmp").mkdir()
    for argv in (["golden", "verify", str(gset)], ["sim", "--golden", str(gset)]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert err.startswith(f"dqt-hw {argv[0]}: error: {gset}/.g.tmp: a hidden or "
                              f"temporary directory in a golden set"), err
    shutil.rmtree(gset / ".g.tmp")
    edit(gset / "g", lambda m: m["arrays"]["acc"].update(bits=24))
    assert main(["golden", "verify", str(gset / "g")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "arrays.acc: 24 bits signed" in err


def test_published_schemas_accept_the_checked_in_set_and_refuse_bad_ones():
    jsonschema = pytest.importorskip("jsonschema")
    here = Path(__file__).resolve().parent.parent / "schemas"
    man = jsonschema.Draft202012Validator(
        json.loads((here / "golden-manifest.schema.json").read_text()))
    sset = jsonschema.Draft202012Validator(
        json.loads((here / "golden-set.schema.json").read_text()))
    for p in sorted(GOLDEN.glob("*/manifest.json")):
        m = json.loads(p.read_text())
        assert man.is_valid(m), p
        bad = json.loads(p.read_text())
        bad["arrays"]["out" if "out" in bad["arrays"] else sorted(bad["arrays"])[0]]["signed"] = \
            "false"
        assert not man.is_valid(bad), p
    doc = json.loads((GOLDEN / "set.json").read_text())
    assert sset.is_valid(doc)
    assert not sset.is_valid({**doc, "sources": {}})
    assert not sset.is_valid({**doc, "cases": {}})


# ----------------------------------------------------------------------------- killed writers

_FILE_OPS = [(pathlib.Path, "write_bytes"), (pathlib.Path, "write_text"), (os, "rename"),
             (os, "replace")]
"""The operations a set is written with: a fault is injected before one of them."""


class Fault(Exception):
    pass


@contextlib.contextmanager
def _file_ops(on_op):
    """Call ``on_op(i)`` before the i-th file operation of ``_FILE_OPS`` (from 0)."""
    count = iter(range(10**6))
    saved = [(obj, name, getattr(obj, name)) for obj, name in _FILE_OPS]

    def wrap(fn):
        def op(*a, **k):
            on_op(next(count))
            return fn(*a, **k)
        return op

    for obj, name, fn in saved:
        setattr(obj, name, wrap(fn))
    try:
        yield
    finally:
        for obj, name, fn in saved:
            setattr(obj, name, fn)


def _writer(target, cases, mode, fault=None):
    """Fork a process that writes ``cases`` to ``target`` (``write_set``, or
    ``update_set`` as `dqt-hw golden canonical` does) and exits; ``fault`` = (i, how):
    before file operation i it kills itself (SIGKILL) or raises. Returns its pid."""
    pid = os.fork()
    if pid:
        return pid
    try:  # the child: no pytest machinery, only the write
        def on_op(i):
            if fault is not None and i == fault[0]:
                if fault[1] == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise Fault(i)

        with _file_ops(on_op):
            (write_set if mode == "set" else update_set)(target, cases, source={"w": mode})
        os._exit(0)
    except BaseException:
        os._exit(3)


def _visible_files(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not any(s.startswith(".") for s in p.relative_to(root).parts)}


def _outcome(target: Path, old: dict, new: dict) -> str:
    try:
        read_set(target)
    except ValueError as e:
        assert "\n" not in str(e), str(e)
        return "refused"
    got = _visible_files(target)
    assert got in (old, new), "a set that verifies holds a mixture of the old and new sets"
    return "old" if got == old else "new"


@pytest.mark.parametrize("mode", ["set", "update"])
def test_killed_writer_never_leaves_a_mixed_set_that_verifies(tmp_path, mode, rng):
    """Kill the writer (SIGKILL) before its first, its last and seeded file operations
    and at seeded random times over its measured run time, and fail it (an exception)
    before seeded operations: the target reads as the old set or the new set, or is
    refused with one line (the seed is printed; DQT_SEED reproduces a run)."""
    old_cases = [gemm_case(f"c{i}", i) for i in range(2)]
    new_cases = [gemm_case(f"c{i}", 10 + i) for i in range(3)]  # c2: a new case
    pristine = tmp_path / "pristine"
    if mode == "set":
        write_set(pristine, old_cases)
    else:  # a directory holding other files, like golden/ and its README.md
        pristine.mkdir()
        (pristine / "README.md").write_text("the set\n")
        update_set(pristine, old_cases)
    target = tmp_path / "target"
    scratch = tmp_path / "scratch"
    shutil.copytree(pristine, scratch)
    calls = []
    with _file_ops(calls.append):
        (write_set if mode == "set" else update_set)(scratch, new_cases, source={"w": mode})
    new = _visible_files(scratch)
    old = _visible_files(pristine)

    def restore():
        for p in tmp_path.iterdir():
            if p.name == "target" or p.name.startswith(".target"):
                shutil.rmtree(p)
        shutil.copytree(pristine, target)

    times = []

    def run(fault=None, delay=None):
        restore()
        t0 = time.perf_counter()
        pid = _writer(target, new_cases, mode, fault)
        if delay is not None:
            time.sleep(delay)
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        times.append(time.perf_counter() - t0)
        return _outcome(target, old, new)

    seen = [run(), run()]  # undisturbed: the new set; the run time measured
    assert seen == ["new", "new"]
    wall = min(times)
    n = len(calls)  # the first and the last operation, and seeded ones between
    kills = [0, n - 1] + sorted(int(i) for i in rng.choice(range(1, n - 1), 6, replace=False))
    seen += [run(fault=(i, "kill")) for i in kills]
    seen += [run(fault=(int(i), "raise")) for i in rng.choice(n, 2, replace=False)]
    seen += [run(delay=float(t)) for t in rng.uniform(0.0, 1.2 * wall, 4)]
    print(f"{mode}: {n} file operations, {wall * 1e3:.1f} ms a write; outcomes "
          f"{ {k: seen.count(k) for k in sorted(set(seen))} }")
    # killed before its first file: write_set leaves the old set (its temporary directory
    # is beside the target), update_set a hidden temporary directory in it (refused)
    assert seen[2] == ("old" if mode == "set" else "refused") and "refused" in seen
    # writing again after a kill completes the set (update_set removes its temporaries)
    assert run(fault=(n // 2, "kill")) == "refused" or mode == "set"
    (write_set if mode == "set" else update_set)(target, new_cases, source={"w": mode})
    assert _outcome(target, old, new) == "new"
