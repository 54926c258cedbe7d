"""The golden-vector set format as pydantic models: the case manifest (``manifest.json``)
and the set manifest (``set.json``), published as ``schemas/golden-manifest.schema.json``
and ``schemas/golden-set.schema.json`` (golden/README.md, docs/formats.md).

Every limit that keeps a reader from allocating what a file merely claims is here: the
number of elements of an array (the product of its declared shape), its dimensions, the
hex width, the number of arrays and cases. ``array_widths`` says which arrays a kind of
case has and the (bits, signed) of each one's hex encoding; the writer
(:func:`dqt_hw.golden.cases.compute`) and the reader (:func:`check_case`) both use it.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Field, StringConstraints, TypeAdapter, create_model, field_validator

from ..design.schema import DesignTable
from ..schema import Strict, validate
from ..spec import (MAX_CONST_BITS, MAX_MASTER_BITS, MAX_MODEL_ACC_WIDTH, MIN_MASTER_BITS,
                    OVERFLOW_MODES, PLANE_WORD_BITS, ROUNDINGS)

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "SET_FORMAT", "SUPPORTED_CONTRACTS", "KINDS",
           "NAME_PATTERN", "MAX_BITS", "MAX_ELEMENTS", "MAX_DIMS", "MAX_ARRAYS", "MAX_CASES",
           "SUM_BITS", "SHIFT_BITS", "ArrayEntry", "CaseManifest", "SetManifest",
           "array_widths", "input_names", "code_inputs", "planes_name", "plane_shape", "check_case", "validate_case", "validate_set",
           "golden_manifest_schema", "golden_set_schema"]

FORMAT_NAME = "dqt_hw-golden"
FORMAT_VERSION = 2
"""Version of the case layout (2: the accumulator width is the param ``acc_width``, was
``acc_bits`` in 1)."""
SET_FORMAT = "dqt_hw-golden-set"
SUPPORTED_CONTRACTS = ("1.0",)
KINDS = ("nested_view", "gemm", "dense_layer", "conv_layer")

NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
"""A case, array or file name: a plain file name, never hidden (no leading '.')."""
MAX_NAME = 255

MAX_BITS = 64
"""Widest value of a hex file (bits of two's complement)."""
MAX_ELEMENTS = 1 << 24
"""Most elements of one array (the product of its declared shape): 128 MiB of int64."""
MAX_DIMS = 8
MAX_ARRAYS = 64
"""Most arrays of one case (a layer case has 13)."""
MAX_CASES = 4096
"""Most cases of one set."""
MAX_GEOMETRY = 64
"""Largest stride and padding of a conv case."""
MAX_GROUPS = 4096
MAX_SEED = (1 << 64) - 1

SUM_BITS = 32
"""Side sums in hex files: signed 32 bits."""
SHIFT_BITS = 16
"""E and S in hex files: signed 16 bits."""

# ----------------------------------------------------------------------------- types

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=MAX_NAME)]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Bits = Annotated[int, Field(ge=1, le=MAX_BITS)]
Master = Annotated[int, Field(ge=MIN_MASTER_BITS, le=MAX_MASTER_BITS)]
Width = Annotated[int, Field(ge=1, le=MAX_MASTER_BITS)]
AccWidth = Annotated[int, Field(ge=2, le=MAX_MODEL_ACC_WIDTH)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Count = Annotated[int, Field(ge=0, le=1 << 64)]
Rounding = Literal[ROUNDINGS]
Overflow = Literal[OVERFLOW_MODES]


class ArrayEntry(Strict):
    """One array of a case: its .npy and .hex files (``<array>.npy``, ``<array>.hex``),
    dtype and shape, the width and signedness of the hex encoding, both files' sha256."""

    file: Name
    hex: Name
    dtype: Annotated[Literal["int64", "uint64"],
                     Field(description="uint64 for a plane array (<input>_planes), int64 "
                                       "otherwise")]
    shape: Annotated[list[Annotated[int, Field(ge=0, le=MAX_ELEMENTS)]],
                     Field(max_length=MAX_DIMS, description=f"at most {MAX_ELEMENTS} "
                                                            f"elements in all")]
    bits: Bits
    signed: bool
    sha256: Sha256 = Field(description="of the .npy file's bytes")
    hex_sha256: Sha256 = Field(description="of the .hex file's bytes")

    @field_validator("shape")
    @classmethod
    def _bounded(cls, v):
        size = math.prod(v)
        if size > MAX_ELEMENTS:
            raise ValueError(f"declares {size} elements, more than the {MAX_ELEMENTS} an "
                             f"array may hold")
        return v


_PLANES = Field(default=False, description="the case also holds the bit-plane form of "
                                            "each code input (<input>_planes, "
                                            "docs/arithmetic.md section 2.3)")


class ViewParams(Strict):
    n: Master
    signed: bool
    rounding: Rounding
    widths: Annotated[list[Width], Field(min_length=1, max_length=MAX_MASTER_BITS)]
    planes: bool = _PLANES


class GemmParams(Strict):
    a_bits: Width
    a_signed: bool
    w_bits: Width
    w_signed: bool
    acc_width: AccWidth
    overflow: Overflow
    seed: Seed
    planes: bool = _PLANES


class CodeFormat(Strict):
    n: Master
    signed: bool


class _LayerParams(Strict):
    a_format: CodeFormat
    w_format: CodeFormat
    b_a: Width
    b_w: Width
    b_out: Width
    out_signed: bool
    acc_width: AccWidth
    overflow: Overflow
    view_rounding: Rounding
    rounding: Rounding
    const_bits: Annotated[int, Field(ge=2, le=MAX_CONST_BITS)]
    seed: Seed
    planes: bool = _PLANES


class DenseParams(_LayerParams):
    stride: None
    padding: None
    groups: None
    pad_code: None


class ConvParams(_LayerParams):
    stride: Annotated[int, Field(ge=1, le=MAX_GEOMETRY)]
    padding: Annotated[int, Field(ge=0, le=MAX_GEOMETRY)]
    groups: Annotated[int, Field(ge=1, le=MAX_GROUPS)]
    pad_code: Annotated[int, Field(ge=-(1 << MAX_MASTER_BITS), le=1 << MAX_MASTER_BITS)]


class Stats(Strict):
    """Accumulator statistics of the model (``dqt_hw.model`` stats)."""

    max_abs_partial: Count
    bits_needed: Count
    events: Count
    outputs_affected: Count
    outputs: Count


class Extra(Strict):
    stats: Stats


PARAMS = {"nested_view": ViewParams, "gemm": GemmParams, "dense_layer": DenseParams,
          "conv_layer": ConvParams}


def _case_fields(kind_type, params_type):
    return dict(
        format=(Literal[FORMAT_NAME], ...),
        format_version=(Literal[FORMAT_VERSION], ...),
        contract_version=(Literal[SUPPORTED_CONTRACTS], ...),
        case=(Name, Field(description="the case directory's name")),
        kind=(kind_type, ...),
        params=(params_type, ...),
        arrays=(Annotated[dict[Name, ArrayEntry], Field(min_length=1, max_length=MAX_ARRAYS)],
                ...),
        extra=(Extra, Field(default=None, description="statistics, where the kind has them")),
    )


CASE_MODELS = {k: create_model(f"{k.title().replace('_', '')}Case", __base__=Strict,
                               **_case_fields(Literal[k], p)) for k, p in PARAMS.items()}
"""The manifest of a case of each kind."""

CaseManifest = create_model("CaseManifest", __base__=Strict,
                            **_case_fields(Literal[KINDS], dict[str, Any]))
"""A case manifest of any kind (its params checked by the kind's model afterwards)."""


class SetEntry(Strict):
    manifest_sha256: Sha256 = Field(description="of the case's manifest.json")


class SetManifest(Strict):
    """``set.json``: the design the set was written for, how its data was made, and every
    case with the sha256 of its manifest."""

    format: Literal[SET_FORMAT]
    format_version: Literal[FORMAT_VERSION]
    contract_version: Literal[SUPPORTED_CONTRACTS]
    design: Optional[DesignTable] = Field(description="Design.to_dict() of the design the "
                                                      "set was written for, or null")
    source: Optional[dict[str, Any]] = Field(description="how the data was made")
    cases: Annotated[dict[Name, SetEntry], Field(min_length=1, max_length=MAX_CASES)]


class _CaseHeader(Strict):
    format: Literal[FORMAT_NAME]
    format_version: Literal[FORMAT_VERSION]
    contract_version: Literal[SUPPORTED_CONTRACTS]


class _SetHeader(Strict):
    format: Literal[SET_FORMAT]
    format_version: Literal[FORMAT_VERSION]
    contract_version: Literal[SUPPORTED_CONTRACTS]


# ----------------------------------------------------------------------------- checks


def _header(doc, model, source):
    """The format and versions first: a manifest of another format or version is named
    as such, not by the first key it happens to lack."""
    if isinstance(doc, dict):
        validate(model, {k: doc[k] for k in model.model_fields if k in doc}, source=source)


def validate_case(doc, *, source: str):
    """A parsed manifest.json as its kind's model (one ValueError line otherwise)."""
    _header(doc, _CaseHeader, source)
    kind = doc.get("kind") if isinstance(doc, dict) else None
    model = CASE_MODELS.get(kind) if isinstance(kind, str) else None
    m = validate(model or CaseManifest, doc, source=source)
    check_case(doc, source=source)
    return m


def validate_set(doc, *, source: str) -> SetManifest:
    """A parsed set.json as :class:`SetManifest` (one ValueError line otherwise)."""
    _header(doc, _SetHeader, source)
    return validate(SetManifest, doc, source=source)


def input_names(kind: str) -> tuple:
    """The input arrays of a case of ``kind`` (the rest are outputs of the model)."""
    a = "x" if kind == "conv_layer" else "a"
    return {"nested_view": ("q",), "gemm": ("a", "w")}.get(kind, (a, "w", "K", "S"))


def code_inputs(kind: str) -> tuple:
    """The inputs of a case of ``kind`` that are master codes (those with a plane form)."""
    return input_names(kind)[:2]


def planes_name(name: str) -> str:
    """The array holding the bit-plane form of the code input ``name``."""
    return f"{name}_planes"


def array_widths(kind: str, params: dict) -> dict:
    """{array name: (bits, signed)} of every array of a case (its hex encoding); with the
    param ``planes``, each code input's plane array (64-bit unsigned words,
    ``PLANE_WORD_BITS``) too."""
    out = _array_widths(kind, params)
    if params.get("planes"):
        out.update({planes_name(k): (PLANE_WORD_BITS, False) for k in code_inputs(kind)})
    return out


def plane_shape(bits: int, shape) -> list:
    """The shape of the plane array of ``bits``-bit codes of ``shape``: (bits, words)."""
    return [bits, -(-math.prod(shape) // PLANE_WORD_BITS)]


def _array_widths(kind: str, params: dict) -> dict:
    p = params
    if kind == "nested_view":
        return {"q": (p["n"], p["signed"]), "v": (p["n"], p["signed"])}
    if kind == "gemm":
        return {"a": (p["a_bits"], p["a_signed"]), "w": (p["w_bits"], p["w_signed"]),
                "acc": (p["acc_width"], True)}
    a = "x" if kind == "conv_layer" else "a"
    af, wf, kb = p["a_format"], p["w_format"], p["const_bits"]
    return {a: (af["n"], af["signed"]), "w": (wf["n"], wf["signed"]), "K": (kb, True),
            "S": (SHIFT_BITS, True), f"{a}_view": (p["b_a"], af["signed"]),
            "w_view": (p["b_w"], wf["signed"]), "acc": (p["acc_width"], True),
            "sum_a": (SUM_BITS, True), "sum_w": (SUM_BITS, True), "rq_K": (kb, True),
            "rq_E": (SHIFT_BITS, True), "rq_S": (SHIFT_BITS, True),
            "out": (p["b_out"], p["out_signed"])}


def check_case(doc: dict, *, source: str) -> None:
    """What the model cannot say of a validated manifest: the kind's arrays exactly,
    each in its own files and at the width and signedness its params make."""
    want = array_widths(doc["kind"], doc["params"])
    arrays = doc["arrays"]
    if sorted(arrays) != sorted(want):
        lack, extra = sorted(set(want) - set(arrays)), sorted(set(arrays) - set(want))
        why = ([f"missing {lack}"] if lack else []) + ([f"unknown {extra}"] if extra else [])
        raise ValueError(f"{source}: arrays: a {doc['kind']} case has the arrays "
                         f"{sorted(want)}, not {sorted(arrays)} ({', '.join(why)})")
    for name, ent in arrays.items():
        for key, suffix in (("file", ".npy"), ("hex", ".hex")):
            if ent[key] != name + suffix:
                raise ValueError(f"{source}: arrays.{name}.{key}: must be "
                                 f"{name + suffix!r}, not {ent[key]!r}")
        bits, signed = want[name]
        if (ent["bits"], ent["signed"]) != (bits, signed):
            raise ValueError(f"{source}: arrays.{name}: {ent['bits']} bits "
                             f"{'signed' if ent['signed'] else 'unsigned'}, the case's params "
                             f"make {bits} bits {'signed' if signed else 'unsigned'}")
    codes = {planes_name(k): k for k in code_inputs(doc["kind"])}
    for name, ent in arrays.items():
        dtype = "uint64" if name in codes else "int64"
        if ent["dtype"] != dtype:
            raise ValueError(f"{source}: arrays.{name}.dtype: must be {dtype!r}, not "
                             f"{ent['dtype']!r}")
        if name in codes:
            code = codes[name]
            if want[code][0] < MIN_MASTER_BITS:
                raise ValueError(f"{source}: params.planes: {code} has {want[code][0]}-bit "
                                 f"codes; a plane form has a master width of at least "
                                 f"{MIN_MASTER_BITS} bits")
            shape = plane_shape(want[code][0], arrays[code]["shape"])
            if ent["shape"] != shape:
                raise ValueError(f"{source}: arrays.{name}.shape: the plane array of "
                                 f"{code} {arrays[code]['shape']} at {want[code][0]} bits has "
                                 f"shape {shape}, not {ent['shape']}")


# ----------------------------------------------------------------------------- published


def _no_null_defaults(doc: dict) -> dict:
    """No ``"default": null`` where null is not a valid value (an optional key)."""
    for d in doc.get("$defs", {}).values():
        for prop in d.get("properties", {}).values():
            if "default" in prop and prop["default"] is None:
                del prop["default"]
    return doc


def golden_manifest_schema() -> dict:
    """The JSON Schema of a case manifest (``schemas/golden-manifest.schema.json``)."""
    union = Annotated[Union[tuple(CASE_MODELS.values())], Field(discriminator="kind")]
    doc = _no_null_defaults(TypeAdapter(union).json_schema())
    return {**doc, "title": "dqt_hw golden case manifest",
            "description": "manifest.json of a golden case (golden/README.md). Beyond the "
                           "schema: an array holds at most "
                           f"{MAX_ELEMENTS} elements (the product of its shape), a case "
                           "has exactly its kind's arrays, named <array>.npy and "
                           "<array>.hex, at the bits and signedness its params make (with "
                           "params.planes, <input>_planes of each code input, uint64 (n, "
                           "ceil(N / 64))), and "
                           "'case' is the directory's name."}


def golden_set_schema() -> dict:
    """The JSON Schema of a set manifest (``schemas/golden-set.schema.json``)."""
    doc = _no_null_defaults(SetManifest.model_json_schema())
    return {**doc, "title": "dqt_hw golden set manifest",
            "description": "set.json of a golden set (golden/README.md): the set holds "
                           "exactly the listed cases, each with this manifest checksum."}
