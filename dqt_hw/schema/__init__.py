"""Validation of the files dqt_hw reads from other people: one library, one error form.

Every input format (technology tables, sweep grids, per-input width tables, design files,
golden-vector manifests; docs/formats.md) is described by a pydantic 2 model. This module
holds what they share:

- :class:`Strict`: the base model: strict types (``"false"`` is not a bool, ``20.9`` not
  an int, an int is not a string), unknown keys refused, no NaN or infinity;
- :func:`read_json`: a JSON file read with its size bounded before it is read, duplicate
  keys, ``NaN`` / ``Infinity`` literals and absurd nesting refused;
- :func:`read_bounded`: the bytes of any input file, its size bounded first;
- :func:`validate`: a document checked against a model; a failure is ONE ``ValueError``
  line naming the file, the field and the value (:func:`refusal`), with the nearest valid
  key suggested for an unknown one;
- argparse types for count options (:func:`positive_int`, :func:`finite_float`, ...).

The JSON Schema files under ``schemas/`` are generated from the same models
(``python -m dqt_hw.schema``, ``make schemas``); a test checks they are up to date.
"""

from __future__ import annotations

import argparse
import difflib
import json
import lzma
import math
import os
import tokenize
import types
import typing
import zipfile
import zlib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

__all__ = ["Strict", "FiniteFloat", "PositiveFloat", "MAX_JSON_BYTES", "read_bounded",
           "read_json", "validate", "refusal", "nearest", "positive_int", "nonnegative_int",
           "finite_float", "fraction", "positive_float", "int_in", "SCHEMAS", "ARRAY_ERRORS",
           "first_line", "npy_header"]

MAX_JSON_BYTES = 1 << 20
"""Largest JSON document (technology table, sweep grid) read: 1 MiB."""

_VALUE_CHARS = 60  # a value in a message is cut to this many characters


class Strict(BaseModel):
    """Base of every input model: strict types, unknown keys refused, finite floats."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False,
                              populate_by_name=False)


FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]


def _short(value) -> str:
    s = repr(value)
    return s if len(s) <= _VALUE_CHARS else s[:_VALUE_CHARS - 3] + "..."


def nearest(key, known) -> str:
    """`` (did you mean 'x'?)`` for the known key nearest ``key``, or ''."""
    near = difflib.get_close_matches(str(key), [str(k) for k in known], n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


# ----------------------------------------------------------------------------- reading


def read_bounded(path, *, what: str, max_bytes: int) -> bytes:
    """The bytes of the file ``path`` (a ``what``), refused with a ValueError when it does
    not exist, is not a file or is larger than ``max_bytes`` (checked before reading)."""
    p = Path(path)
    try:
        size = os.stat(p).st_size
    except FileNotFoundError:
        raise ValueError(f"{what} file {str(path)!r} does not exist") from None
    except OSError as e:
        raise ValueError(f"{what} file {str(path)!r} cannot be read: {e.strerror}") from None
    if not p.is_file():
        raise ValueError(f"{what} file {str(path)!r} is not a file")
    if size > max_bytes:
        raise ValueError(f"{what} file {str(path)!r} has {size} bytes, more than the "
                         f"{max_bytes} this format allows")
    try:
        with open(p, "rb") as f:  # in chunks: f.read(n) would reserve n bytes at once
            chunks, total = [], 0
            while total <= max_bytes:
                chunk = f.read(min(1 << 20, max_bytes + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
            data = b"".join(chunks)
    except OSError as e:
        raise ValueError(f"{what} file {str(path)!r} cannot be read: {e.strerror}") from None
    if len(data) > max_bytes:  # it grew while read
        raise ValueError(f"{what} file {str(path)!r} is larger than the {max_bytes} bytes "
                         f"this format allows")
    return data


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _no_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def parse_json(data: bytes | str, *, source: str) -> Any:
    """A JSON document, strictly: UTF-8, no duplicate keys, no NaN / Infinity, no absurd
    nesting; otherwise one ValueError line naming ``source``."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as e:
        raise ValueError(f"{source}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise ValueError(f"{source}: not valid JSON: {e}") from None
    except ValueError as e:  # a duplicate key, a NaN literal, an over-long integer
        raise ValueError(f"{source}: not valid JSON: {str(e).splitlines()[0]}") from None
    except RecursionError:
        raise ValueError(f"{source}: not valid JSON: nested too deeply") from None


def read_json(path, *, what: str, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The JSON document of the file ``path`` (a ``what``: "technology table", ...), read
    within ``max_bytes`` and parsed by :func:`parse_json`."""
    return parse_json(read_bounded(path, what=what, max_bytes=max_bytes),
                      source=f"{what} {str(path)!r}")


ARRAY_ERRORS = (ValueError, TypeError, KeyError, OSError, EOFError, SyntaxError, OverflowError,
                RecursionError, RuntimeError, NotImplementedError, zipfile.BadZipFile,
                tokenize.TokenError, zlib.error, lzma.LZMAError)
"""What reading a malformed .npy/.npz raises (numpy's header parser, zipfile)."""


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def npy_header(f, *, source: str, what: str = "a plain array"):
    """(shape, dtype, fortran_order) from the .npy header at the open file ``f``, read
    before anything is allocated: a malformed header, or one of Python objects (never
    unpickled), is one ValueError line ``<source> is not <what>: <why>``."""
    import numpy as np

    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"npy format version {version} is not read (1.0 and 2.0 are)")
    except ARRAY_ERRORS as e:
        raise ValueError(f"{source} is not {what}: {first_line(e)}") from None
    if dtype.hasobject:
        raise ValueError(f"{source} is not {what}: it holds Python objects, which are never "
                         f"unpickled (allow_pickle=False)")
    return tuple(shape), dtype, bool(fortran)


# ----------------------------------------------------------------------------- validating


def _unwrap(tp):
    """The type inside Annotated / Optional / Union (the first model or container)."""
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            tp = models[0] if models else (args[0] if args else tp)
            if typing.get_origin(tp) is None:
                return tp
            continue
        return tp


def _known_keys(model, loc) -> list[str] | None:
    """The valid keys of the object at ``loc`` inside ``model`` (None if not a model)."""
    tp = model
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            fields = {(f.alias or name): f for name, f in tp.model_fields.items()}
            if part not in fields:
                return None
            tp = fields[part].annotation
        elif typing.get_origin(tp) in (list, tuple, dict):
            args = typing.get_args(tp)
            tp = args[-1] if args else Any
        else:
            return None
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [(f.alias or name) for name, f in tp.model_fields.items()]
    return None


def _where(loc) -> str:
    out = ""
    for part in loc:
        if part == "[key]":
            out += " (a key)"
        elif isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "the document"


def refusal(err: ValidationError, *, source: str, model=None) -> ValueError:
    """One ValueError line for a pydantic ValidationError: ``source: field: problem
    (value)``, the first problem only (and how many more there are)."""
    errors = err.errors(include_url=False)
    # an unknown key first (a misspelt key is also a missing one), then the missing keys
    rank = {"extra_forbidden": 0, "missing": 1}
    e = min(errors, key=lambda x: rank.get(x["type"], 2))
    loc = tuple(e["loc"])
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    if e["type"] == "extra_forbidden":
        key = loc[-1]
        known = _known_keys(model, loc[:-1]) if model is not None else None
        hint = nearest(key, known) if known else ""
        at = f" in {_where(loc[:-1])}" if len(loc) > 1 else ""
        keys = f"; known keys: {', '.join(known)}" if known else ""
        return ValueError(f"{source}: unknown key {key!r}{at}{hint}{keys}{more}")
    if e["type"] == "missing":
        parent = loc[:-1]
        missing = [x["loc"][-1] for x in errors
                   if x["type"] == "missing" and tuple(x["loc"][:-1]) == parent]
        rest = len(errors) - len(missing)
        more = f" (and {rest} more problems)" if rest else ""
        at = f"{_where(parent)}: " if parent else ""
        return ValueError(f"{source}: {at}lacks the required keys {missing}{more}")
    msg = e["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    msg = msg[:1].lower() + msg[1:]
    value = f" (value {_short(e['input'])})" if ", not " in msg else f", not {_short(e['input'])}"
    return ValueError(f"{source}: {_where(loc)}: {msg}{value}{more}")


_ADAPTERS: dict = {}


def _adapter(model):
    if isinstance(model, type) and issubclass(model, BaseModel):
        return None
    if model not in _ADAPTERS:
        _ADAPTERS[model] = TypeAdapter(model)
    return _ADAPTERS[model]


def validate(model, data, *, source: str, strict: bool = True):
    """``data`` (a parsed document) as ``model`` (a pydantic model or a type), or one
    ValueError line from :func:`refusal`. ``strict=False`` lets text become numbers (CSV
    cells); it never lets a fraction become an integer."""
    try:
        ad = _adapter(model)
        if ad is None:
            return model.model_validate(data, strict=strict)
        return ad.validate_python(data, strict=strict)
    except ValidationError as e:
        raise refusal(e, source=source, model=model) from None
    except RecursionError:
        raise ValueError(f"{source}: nested too deeply") from None


# ----------------------------------------------------------------------------- options


def _number(text, kind, what):
    try:
        v = kind(text)
    except (TypeError, ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}") from None
    if kind is float and not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}")
    return v


def int_in(lo: int, hi: int | None = None):
    """An argparse type: an integer in [lo, hi] (hi None: no upper bound)."""
    what = f"an integer in [{lo}, {hi}]" if hi is not None else f"an integer >= {lo}"

    def conv(text):
        v = _number(text, int, what)
        if v < lo or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}")
        return v

    conv.__name__ = "integer"
    return conv


positive_int = int_in(1)
nonnegative_int = int_in(0)


def finite_float(text):
    """An argparse type: a finite number."""
    return _number(text, float, "a finite number")


def positive_float(text):
    """An argparse type: a finite number > 0."""
    v = _number(text, float, "a finite number > 0")
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, not {text!r}")
    return v


def fraction(text):
    """An argparse type: a finite number in [0, 1]."""
    v = _number(text, float, "a number in [0, 1]")
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], not {text!r}")
    return v


# ----------------------------------------------------------------------------- published

SCHEMAS = {
    "tech-table": "dqt_hw.cost.tech:tech_table_schema",
    "sweep-grid": "dqt_hw.sweep.grid:sweep_grid_schema",
    "per-input-widths": "dqt_hw.cost.workload:per_input_widths_schema",
    "design": "dqt_hw.design.schema:design_schema",
    "network": "dqt_hw.net.netfile:network_schema",
    "network-topology": "dqt_hw.net.netfile:network_topology_schema",
    "width-mix": "dqt_hw.cost.workload:width_mix_schema",
    "golden-manifest": "dqt_hw.golden.schema:golden_manifest_schema",
    "golden-set": "dqt_hw.golden.schema:golden_set_schema",
    "register-map": "dqt_hw.ip.ipxact:register_map_schema",
}
"""Published schemas: ``schemas/<name>.schema.json`` and the function that makes each."""


def _tighten(node):
    """pydantic writes a dict with constrained keys as ``patternProperties`` alone, which
    JSON Schema reads as "other keys allowed": close it (the models refuse them)."""
    if isinstance(node, dict):
        if "patternProperties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for v in node.values():
            _tighten(v)
    elif isinstance(node, list):
        for v in node:
            _tighten(v)
    return node


def schema_documents() -> dict[str, str]:
    """{file name: text} of every published schema, generated now."""
    import importlib

    out = {}
    for name, target in SCHEMAS.items():
        mod, fn = target.split(":")
        doc = _tighten(getattr(importlib.import_module(mod), fn)())
        doc = {"$schema": "https://json-schema.org/draft/2020-12/schema", **doc}
        out[f"{name}.schema.json"] = json.dumps(doc, indent=2, sort_keys=False) + "\n"
    return out
