"""Golden-vector sets on disk: a directory per case (format in golden/README.md).

    <case>/manifest.json   contract version, kind, parameters, seed, and per array:
                           file names, dtype, shape, bit width, signedness, sha256
    <case>/<name>.npy      the array (int64, C order), loadable with allow_pickle=False
    <case>/<name>.hex      the same values for $readmemh: one per line, row-major,
                           two's complement in ``bits`` bits, ceil(bits / 4) hex digits

Files are untrusted input: the reader checks the manifest's shape, refuses unknown
contract versions and any file name that is not a plain name inside the case directory,
loads arrays with ``allow_pickle=False`` and checks every checksum. A set is written to a
temporary directory beside the target and renamed into place, so an interrupted write
never leaves a half set that reads as valid.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..spec import CONTRACT_VERSION

FORMAT_NAME = "dqt_hw-golden"
FORMAT_VERSION = 2
"""Version of the case layout (2: the accumulator width is the param ``acc_width``, was
``acc_width`` in 1)."""
SET_FILE = "set.json"
SET_FORMAT = "dqt_hw-golden-set"
SUPPORTED_CONTRACTS = ("1.0",)
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


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


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a, dtype=np.int64), allow_pickle=False)
    return buf.getvalue()


def hex_text(a: np.ndarray, bits: int, signed: bool) -> str:
    """$readmemh text: one value a line, two's complement in ``bits`` bits."""
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


def write_case(root, name: str, *, kind: str, params: dict, arrays: dict, extra=None) -> Path:
    """Write case ``name`` under ``root`` atomically; return its directory.

    ``arrays`` maps a name to a ``GoldenArray``; ``params`` and ``extra`` must be JSON-able.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"case name must be a plain file name, not {name!r}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    entries = {}
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        for aname, ga in sorted(arrays.items()):
            if not _NAME.match(aname):
                raise ValueError(f"array name must be a plain file name, not {aname!r}")
            raw = npy_bytes(ga.data)
            hx = hex_text(ga.data, ga.bits, ga.signed).encode()
            (tmp / f"{aname}.npy").write_bytes(raw)
            (tmp / f"{aname}.hex").write_bytes(hx)
            entries[aname] = {
                "file": f"{aname}.npy",
                "hex": f"{aname}.hex",
                "dtype": "int64",
                "shape": list(np.shape(ga.data)),
                "bits": int(ga.bits),
                "signed": bool(ga.signed),
                "sha256": _sha256(raw),
                "hex_sha256": _sha256(hx),
            }
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "contract_version": CONTRACT_VERSION,
            "case": name,
            "kind": kind,
            "params": params,
            "arrays": entries,
        }
        if extra:
            manifest["extra"] = extra
        (tmp / "manifest.json").write_text(_json_text(manifest))
        return replace_dir(tmp, root / name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _json_text(doc) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def replace_dir(tmp: Path, final: Path) -> Path:
    """Move the finished directory ``tmp`` to ``final`` (a sibling), replacing what was
    there by renames only: a reader sees the old directory or the new one."""
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old.", dir=final.parent))
        os.rename(final, old / final.name)
    os.rename(tmp, final)
    if old is not None:
        shutil.rmtree(old)
    return final


def write_set(root, cases, *, design: dict | None = None, source: dict | None = None) -> Path:
    """Write a whole set atomically: every case (``cases``: objects with ``write(root)``
    and ``name``, e.g. ``dqt_hw.golden.cases.CaseData``) and the set manifest
    ``set.json`` into a directory beside ``root``, then rename it to ``root``."""
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        for c in cases:
            c.write(tmp)
        write_set_manifest(tmp, [c.name for c in cases], design=design, source=source)
        return replace_dir(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_set_manifest(root, names, *, design: dict | None = None,
                       source: dict | None = None) -> Path:
    """``root/set.json``: the design the set was written for (its ``to_dict()``), how
    its data was made, and each case with the sha256 of its manifest.json (which holds
    the checksums of every array)."""
    root = Path(root)
    doc = {
        "format": SET_FORMAT,
        "format_version": FORMAT_VERSION,
        "contract_version": CONTRACT_VERSION,
        "design": design,
        "source": source,
        "cases": {nm: {"manifest_sha256": _sha256((root / nm / "manifest.json").read_bytes())}
                  for nm in sorted(names)},
    }
    path = root / SET_FILE
    tmp = root / f".{SET_FILE}.tmp{os.getpid()}"
    tmp.write_text(_json_text(doc))
    os.replace(tmp, path)
    return path


def read_set_manifest(root) -> dict | None:
    """The validated ``set.json`` of ``root`` (None when there is none): every case it
    lists is there with the recorded manifest checksum, and no other case is."""
    root = Path(root)
    path = root / SET_FILE
    if not path.exists():
        return None
    doc = _read_doc(path, SET_FORMAT)
    cases = doc.get("cases")
    if not isinstance(cases, dict):
        raise ValueError(f"{path}: field 'cases' missing or not an object")
    present = sorted(p.name for p in root.iterdir() if (p / "manifest.json").exists())
    if sorted(cases) != present:
        raise ValueError(f"{path}: lists cases {sorted(cases)}, the directory holds {present}")
    for nm, ent in cases.items():
        _plain_file(root, nm, "set.json case")
        got = _sha256((root / nm / "manifest.json").read_bytes())
        if not isinstance(ent, dict) or got != ent.get("manifest_sha256"):
            raise ValueError(f"{root / nm / 'manifest.json'}: sha256 {got} does not match "
                             f"set.json's {ent.get('manifest_sha256') if isinstance(ent, dict) else ent!r}")
    return doc


def _read_doc(path: Path, fmt: str) -> dict:
    """A JSON manifest of format ``fmt`` at this reader's format version."""
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise ValueError(f"{path}: not a {fmt} manifest")
    if doc.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unknown format version {doc.get('format_version')!r} "
                         f"(this reader knows {FORMAT_VERSION})")
    return doc


def _plain_file(case_dir: Path, fname, what: str) -> Path:
    if not isinstance(fname, str) or not _NAME.match(fname) or fname in (".", ".."):
        raise ValueError(f"{case_dir}: {what} names {fname!r}, not a plain file in the case directory")
    p = case_dir / fname
    if p.resolve().parent != case_dir.resolve():
        raise ValueError(f"{case_dir}: {what} names {fname!r}, a path outside the case directory")
    return p


def read_case(path) -> GoldenCase:
    """Read and validate the case directory ``path``; raise ValueError on any defect."""
    case_dir = Path(path)
    mpath = case_dir / "manifest.json"
    if not mpath.is_file():
        raise ValueError(f"{case_dir}: no manifest.json")
    manifest = _read_doc(mpath, FORMAT_NAME)
    cv = manifest.get("contract_version")
    if cv not in SUPPORTED_CONTRACTS:
        raise ValueError(
            f"{mpath}: unknown contract version {cv!r} (supported: {SUPPORTED_CONTRACTS})"
        )
    for key, typ in (("kind", str), ("params", dict), ("arrays", dict), ("case", str)):
        if not isinstance(manifest.get(key), typ):
            raise ValueError(f"{mpath}: field {key!r} missing or not a {typ.__name__}")
    arrays = {}
    for aname, ent in manifest["arrays"].items():
        if not isinstance(ent, dict):
            raise ValueError(f"{mpath}: array {aname!r} entry is not an object")
        for key in ("file", "hex", "shape", "bits", "signed", "sha256", "hex_sha256"):
            if key not in ent:
                raise ValueError(f"{mpath}: array {aname!r} lacks {key!r}")
        f = _plain_file(case_dir, ent["file"], f"array {aname!r}")
        h = _plain_file(case_dir, ent["hex"], f"array {aname!r} hex")
        if not f.is_file() or not h.is_file():
            raise ValueError(f"{case_dir}: array {aname!r}: file {ent['file']} or {ent['hex']} is missing")
        raw = f.read_bytes()
        if _sha256(raw) != ent["sha256"]:
            raise ValueError(
                f"{f}: sha256 {_sha256(raw)} does not match the manifest's {ent['sha256']}"
            )
        hx = h.read_bytes()
        if _sha256(hx) != ent["hex_sha256"]:
            raise ValueError(
                f"{h}: sha256 {_sha256(hx)} does not match the manifest's {ent['hex_sha256']}"
            )
        try:
            data = np.load(io.BytesIO(raw), allow_pickle=False)
        except ValueError as e:
            raise ValueError(f"{f}: not a plain .npy array ({e})") from None
        if data.dtype != np.int64 or list(data.shape) != list(ent["shape"]):
            raise ValueError(
                f"{f}: holds {data.dtype} {list(data.shape)}, the manifest says int64 "
                f"{ent['shape']}"
            )
        if hex_text(data, int(ent["bits"]), bool(ent["signed"])).encode() != hx:
            raise ValueError(f"{h}: does not hold the same values as {f}")
        arrays[aname] = data
    return GoldenCase(case_dir, manifest, arrays)


def read_set(root) -> list[GoldenCase]:
    """Every case directory under ``root`` (sorted by name), each validated; with a
    ``set.json``, the set must be exactly the cases it lists (``read_set_manifest``)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: not a directory")
    read_set_manifest(root)
    return [read_case(p) for p in sorted(root.iterdir()) if (p / "manifest.json").exists()]
