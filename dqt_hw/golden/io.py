"""Golden-vector sets on disk: a directory per case and a set manifest (format in
golden/README.md, models in :mod:`dqt_hw.golden.schema`).

    set.json               the set: the design it was written for, how its data was made,
                           each case with the sha256 of its manifest.json
    <case>/manifest.json   contract version, kind, parameters, seed, and per array:
                           file names, dtype, shape, bit width, signedness, sha256
    <case>/<name>.npy      the array (int64, C order), loadable with allow_pickle=False
    <case>/<name>.hex      the same values for $readmemh: one per line, row-major,
                           two's complement in ``bits`` bits, ceil(bits / 4) hex digits
    <case>/<in>_planes.*   (params.planes) the bit-plane form of the code input <in>:
                           uint64 (n, ceil(N / 64)), one 64-bit word (16 hex digits) a
                           line, the most significant plane first; checked against <in>

Files are untrusted input. The reader checks, in this order and before it reads or
allocates what a file merely claims: the set's listing (no hidden or temporary
directory, none without a manifest, exactly the cases set.json lists), each manifest's
size and checksum, its model (strict types, unknown keys refused, the kind's arrays at
the widths its params make, at most ``MAX_ELEMENTS`` elements an array), each file's
size against the declared shape and width, its checksum, the .npy header (the declared
dtype, C order, the declared shape, never a pickle), the .hex lines, exactly, and each
plane array against its codes. Every refusal
is one ValueError line naming the file, the field and the value.

A set is written to a temporary directory beside the target and renamed into place
(:func:`write_set`); :func:`update_set` replaces the cases of a directory one by one and
writes ``set.json`` last. Either way an interrupted write leaves the old set, a set
that does not verify, or the new one: never one that verifies with a mixture.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..files import atomic_write_text, replace_dir, staged_dir
from ..schema import MAX_JSON_BYTES, npy_header, parse_json, read_bounded
from ..spec import CONTRACT_VERSION
from .schema import (FORMAT_NAME, FORMAT_VERSION, SET_FORMAT, SUPPORTED_CONTRACTS,
                     code_inputs, planes_name, validate_case, validate_set)

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "SET_FORMAT", "SUPPORTED_CONTRACTS", "SET_FILE",
           "MANIFEST", "GoldenArray", "GoldenCase", "hex_text", "npy_bytes", "write_case",
           "write_set", "update_set", "write_set_manifest", "read_case", "read_set",
           "read_set_manifest", "replace_dir"]

SET_FILE = "set.json"
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = MAX_JSON_BYTES
"""Largest manifest.json or set.json read (1 MiB; a layer case's manifest has 6 KiB)."""
MAX_NPY_HEADER = 4096
"""Largest .npy header (magic, length and the header dict; numpy writes 128 bytes)."""

@dataclass(frozen=True)
class GoldenArray:
    """An array of a case with its declared bit width and signedness (for the hex file)."""

    data: np.ndarray
    bits: int
    signed: bool


@dataclass(frozen=True)
class GoldenCase:
    """A case read from disk: its manifest and arrays (validated)."""

    path: Path
    manifest: dict
    arrays: dict

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def params(self) -> dict:
        return self.manifest["params"]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _dtype(a) -> np.dtype:
    """uint64 for a plane array (packed words), int64 for everything else."""
    return np.dtype(np.uint64) if np.asarray(a).dtype == np.uint64 else np.dtype(np.int64)


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a, dtype=_dtype(a)), allow_pickle=False)
    return buf.getvalue()


def hex_text(a: np.ndarray, bits: int, signed: bool) -> str:
    """$readmemh text: one value a line, two's complement in ``bits`` bits (a uint64
    array: its words, unsigned, ``bits`` = 64)."""
    if np.asarray(a).dtype == np.uint64:
        if bits != 64 or signed:
            raise ValueError(f"uint64 words are written as unsigned 64 bits, not "
                             f"{'signed' if signed else 'unsigned'} {bits} bits")
        return "".join(f"{int(v):016x}\n" for v in np.asarray(a).ravel())
    flat = np.asarray(a, dtype=np.int64).ravel()
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if flat.size and (int(flat.min()) < lo or int(flat.max()) > hi):
        raise ValueError(
            f"values in [{int(flat.min())}, {int(flat.max())}] do not fit "
            f"{'signed' if signed else 'unsigned'} {bits} bits ([{lo}, {hi}])"
        )
    digits = (bits + 3) // 4
    mask = (1 << bits) - 1
    return "".join(f"{int(v) & mask:0{digits}x}\n" for v in flat)


# ----------------------------------------------------------------------------- writing


def write_case(root, name: str, *, kind: str, params: dict, arrays: dict, extra=None) -> Path:
    """Write case ``name`` under ``root`` atomically; return its directory.

    ``arrays`` maps a name to a ``GoldenArray``; ``params`` and ``extra`` must be JSON-able.
    The manifest is checked by the reader's model first: nothing the reader would refuse
    is written.
    """
    root = Path(root)
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "contract_version": CONTRACT_VERSION,
        "case": name,
        "kind": kind,
        "params": params,
        "arrays": {a: {"file": f"{a}.npy", "hex": f"{a}.hex", "dtype": _dtype(ga.data).name,
                       "shape": list(np.shape(ga.data)), "bits": int(ga.bits),
                       "signed": bool(ga.signed), "sha256": "0" * 64, "hex_sha256": "0" * 64}
                   for a, ga in sorted(arrays.items())},
    }
    if extra:
        manifest["extra"] = extra
    validate_case(json.loads(json.dumps(manifest)), source=f"golden case {name!r}")
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        for aname, ga in sorted(arrays.items()):
            raw = npy_bytes(ga.data)
            hx = hex_text(ga.data, ga.bits, ga.signed).encode()
            (tmp / f"{aname}.npy").write_bytes(raw)
            (tmp / f"{aname}.hex").write_bytes(hx)
            manifest["arrays"][aname].update(sha256=_sha256(raw), hex_sha256=_sha256(hx))
        (tmp / MANIFEST).write_text(_json_text(manifest))
        return replace_dir(tmp, root / name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _json_text(doc) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def write_set(root, cases, *, design: dict | None = None, source: dict | None = None) -> Path:
    """Write a whole set atomically: every case (``cases``: objects with ``write(root)``
    and ``name``, e.g. ``dqt_hw.golden.cases.CaseData``) and the set manifest
    ``set.json`` into a directory beside ``root``, then rename it to ``root``."""
    root = Path(root)
    _some(root, cases)
    with staged_dir(root, keep=False) as tmp:  # fsynced, renamed; removed on an error
        for c in cases:
            c.write(tmp)
        write_set_manifest(tmp, [c.name for c in cases], design=design, source=source)
    return root


def _some(root: Path, cases) -> None:
    if not cases:
        raise ValueError(f"golden set {str(root)!r}: no cases to write (a set holds at least "
                         f"one)")


def update_set(root, cases, *, design: dict | None = None,
               source: dict | None = None) -> list[Path]:
    """Write ``cases`` into the existing directory ``root`` (which may hold other files,
    such as golden/README.md): each case replaced atomically, then ``set.json``, last. An
    interrupted update leaves cases that set.json's checksums do not match (or a hidden
    temporary directory): a set that does not verify, unless every case written so far
    is byte-identical to the one it replaced; running it again completes it (the
    temporary directories an interrupted run left for these cases are removed first).
    Returns the case directories."""
    root = Path(root)
    _some(root, cases)
    for c in cases:  # what write_case and replace_dir name their temporaries
        for p in root.glob(f".{c.name}.*"):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
    written = [c.write(root) for c in cases]
    write_set_manifest(root, [c.name for c in cases], design=design, source=source)
    return written


def write_set_manifest(root, names, *, design: dict | None = None,
                       source: dict | None = None) -> Path:
    """``root/set.json``: the design the set was written for (its ``to_dict()``), how
    its data was made, and each case with the sha256 of its manifest.json (which holds
    the checksums of every array); written atomically."""
    root = Path(root)
    doc = {
        "format": SET_FORMAT,
        "format_version": FORMAT_VERSION,
        "contract_version": CONTRACT_VERSION,
        "design": design,
        "source": source,
        "cases": {nm: {"manifest_sha256": _sha256((root / nm / MANIFEST).read_bytes())}
                  for nm in sorted(names)},
    }
    validate_set(json.loads(json.dumps(doc)), source=f"golden set {str(root)!r}")
    path = root / SET_FILE
    atomic_write_text(path, _json_text(doc))
    return path


# ----------------------------------------------------------------------------- reading


def _set_listing(root: Path) -> dict:
    """The validated set.json of ``root``, after checking that the directory holds
    exactly its cases: no link, no hidden or temporary directory, no directory without
    a manifest, no case missing or extra."""
    if not root.is_dir():
        raise ValueError(f"{root}: not a directory")
    spath = root / SET_FILE
    if not spath.exists() and not spath.is_symlink():
        raise ValueError(f"{root}: no {SET_FILE} (every golden set has one: `dqt-hw golden "
                         f"write` and `dqt-hw golden canonical` write it; a single case "
                         f"directory has a {MANIFEST} instead)")
    source = f"golden set manifest {str(spath)!r}"
    if spath.is_symlink():
        raise ValueError(f"{source}: a link, not a file")
    doc = parse_json(read_bounded(spath, what="golden set manifest",
                                  max_bytes=MAX_MANIFEST_BYTES), source=source)
    validate_set(doc, source=source)
    dirs = []
    for p in sorted(root.iterdir()):
        if p.is_symlink():
            raise ValueError(f"{p}: a link in a golden set (cases are plain directories)")
        if not p.is_dir():
            continue
        if p.name.startswith("."):
            raise ValueError(f"{p}: a hidden or temporary directory in a golden set (an "
                             f"interrupted write leaves one: write the set again)")
        if not (p / MANIFEST).is_file():
            raise ValueError(f"{p}: a directory without a {MANIFEST} in a golden set")
        dirs.append(p.name)
    listed = sorted(doc["cases"])
    if listed != dirs:
        missing = sorted(set(listed) - set(dirs))
        extra = sorted(set(dirs) - set(listed))
        why = ([f"lists the cases {missing}, which the directory lacks"] if missing else []) \
            + ([f"does not list the case directories {extra}"] if extra else [])
        raise ValueError(f"{source}: {'; '.join(why)}")
    return doc


def _manifest_raw(case_dir: Path, want_sha: str | None) -> tuple[Path, bytes]:
    mpath = case_dir / MANIFEST
    if not mpath.is_file() or mpath.is_symlink():
        raise ValueError(f"{case_dir}: no {MANIFEST} (a plain file)")
    raw = read_bounded(mpath, what="golden case manifest", max_bytes=MAX_MANIFEST_BYTES)
    if want_sha is not None and _sha256(raw) != want_sha:
        raise ValueError(f"{mpath}: sha256 {_sha256(raw)} does not match set.json's "
                         f"{want_sha}")
    return mpath, raw


def read_set_manifest(root) -> dict:
    """The validated ``set.json`` of ``root`` (required): the directory holds exactly
    the cases it lists, each manifest with the recorded checksum."""
    root = Path(root)
    doc = _set_listing(root)
    for nm, ent in sorted(doc["cases"].items()):
        _manifest_raw(root / nm, ent["manifest_sha256"])
    return doc


def read_set(root) -> list[GoldenCase]:
    """Every case of the set ``root`` (sorted by name), each validated: the set must be
    exactly the cases its ``set.json`` lists, with the recorded manifest checksums."""
    root = Path(root)
    doc = _set_listing(root)
    return [_read_case(root / nm, ent["manifest_sha256"])
            for nm, ent in sorted(doc["cases"].items())]


def read_case(path) -> GoldenCase:
    """Read and validate the case directory ``path``; raise ValueError on any defect."""
    return _read_case(Path(path), None)


def _read_case(case_dir: Path, want_sha: str | None) -> GoldenCase:
    mpath, raw = _manifest_raw(case_dir, want_sha)
    source = f"golden case manifest {str(mpath)!r}"
    manifest = parse_json(raw, source=source)
    validate_case(manifest, source=source)
    name = case_dir.resolve().name
    if manifest["case"] != name:
        raise ValueError(f"{source}: case: {manifest['case']!r} is not the name of its "
                         f"directory {name!r}")
    arrays = {}
    for aname, ent in manifest["arrays"].items():
        data = _read_npy(_plain_file(case_dir, ent["file"]), ent)
        _check_hex(_plain_file(case_dir, ent["hex"]), ent, data)
        arrays[aname] = data
    _check_planes(case_dir, manifest, arrays)
    return GoldenCase(case_dir, manifest, arrays)


def _check_planes(case_dir: Path, manifest: dict, arrays: dict) -> None:
    """Each plane array (``<input>_planes``) is the plane form of its codes, word for
    word (docs/arithmetic.md section 2.3)."""
    from ..model.planes import to_planes

    kind, ents = manifest["kind"], manifest["arrays"]
    for code in code_inputs(kind):
        name = planes_name(code)
        if name not in arrays:
            continue
        bits, signed = ents[code]["bits"], ents[code]["signed"]
        want = to_planes(arrays[code], n=bits, signed=signed)
        bad = np.argwhere(want != arrays[name])
        if bad.size:
            j, k = (int(v) for v in bad[0])
            raise ValueError(f"{case_dir / ents[name]['file']}: row {j} (plane {bits - 1 - j}) "
                             f"word {k} is {int(arrays[name][j, k]):#018x}, the plane form of "
                             f"{ents[code]['file']} has {int(want[j, k]):#018x}")


def _plain_file(case_dir: Path, fname: str) -> Path:
    """``case_dir/fname``, a plain file (the name is plain: the model says so)."""
    p = case_dir / fname
    if p.is_symlink():
        raise ValueError(f"{p}: a link, not a plain file in the case directory")
    if not p.is_file():
        raise ValueError(f"{p}: missing (named by the manifest)")
    return p


def _read_npy(f: Path, ent: dict) -> np.ndarray:
    """The int64 array of ``f``: its size against the declared shape first (nothing
    read or allocated beyond it), then its checksum, then its header."""
    shape = list(ent["shape"])
    count = math.prod(shape)
    nbytes = 8 * count
    size = os.stat(f).st_size
    if not nbytes < size <= nbytes + MAX_NPY_HEADER:
        raise ValueError(f"{f}: has {size} bytes, an {ent['dtype']} array of shape {shape} "
                         f"takes {nbytes} and a header of at most {MAX_NPY_HEADER}")
    raw = read_bounded(f, what="golden array", max_bytes=nbytes + MAX_NPY_HEADER)
    if _sha256(raw) != ent["sha256"]:
        raise ValueError(f"{f}: sha256 {_sha256(raw)} does not match the manifest's "
                         f"{ent['sha256']}")
    buf = io.BytesIO(raw)
    with warnings.catch_warnings():  # numpy warns of a header in Python 2's syntax
        warnings.simplefilter("ignore")
        got, dtype, fortran = npy_header(buf, source=str(f), what="a plain .npy array")
    want = ent["dtype"]
    code = {"int64": "<i8", "uint64": "<u8"}[want]
    if dtype != np.dtype(code) or fortran or list(got) != shape:
        raise ValueError(f"{f}: holds {dtype.str if dtype != np.dtype(code) else want} "
                         f"{list(got)}{' in Fortran order' if fortran else ''}, the manifest "
                         f"says {want} {shape} (little-endian, C order)")
    if len(raw) - buf.tell() != nbytes:
        raise ValueError(f"{f}: has {len(raw) - buf.tell()} bytes of data, an {want} array "
                         f"of shape {shape} takes {nbytes}")
    return np.frombuffer(raw, dtype=code, count=count, offset=buf.tell()) \
        .astype(np.dtype(want)).reshape(shape)


def _check_hex(h: Path, ent: dict, data: np.ndarray) -> None:
    """``h`` holds exactly ``hex_text(data, bits, signed)``: its size first (one line of
    ceil(bits / 4) digits a value), then its checksum, then line by line."""
    bits, signed = ent["bits"], ent["signed"]
    digits = (bits + 3) // 4
    want = data.size * (digits + 1)
    size = os.stat(h).st_size
    if size != want:
        with open(h, "rb") as fh:
            head = fh.read(digits + 64)
        line = head.split(b"\n", 1)[0] if b"\n" in head else None
        first = f"; its first line has {len(line)} characters" if line is not None else ""
        raise ValueError(f"{h}: has {size} bytes, {data.size} values of {bits} bits take "
                         f"{want} (ceil({bits} / 4) = {digits} hex digits and a newline "
                         f"each){first}")
    hx = read_bounded(h, what="golden hex file", max_bytes=want)
    if _sha256(hx) != ent["hex_sha256"]:
        raise ValueError(f"{h}: sha256 {_sha256(hx)} does not match the manifest's "
                         f"{ent['hex_sha256']}")
    try:
        text = hex_text(data, bits, signed).encode()
    except ValueError as e:
        raise ValueError(f"{h}: the .npy {e}") from None
    if text != hx:
        got, exp = hx.split(b"\n"), text.split(b"\n")
        i = next((i for i, (a, b) in enumerate(zip(got, exp)) if a != b), 0)
        raise ValueError(f"{h}: line {i + 1} is {got[i].decode('latin-1')!r}, the .npy "
                         f"value {int(data.ravel()[i])} in {bits} bits is "
                         f"{exp[i].decode()!r}")
