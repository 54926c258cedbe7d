"""The published schema of a design file (``schemas/design.schema.json``).

:class:`dqt_hw.design.Design` validates a design itself (its messages are documented in
docs/design.md); this module describes the same file for other tools, from the same facts:
the keys are the Design's fields, the integer ranges :data:`dqt_hw.design.core.INT_RANGES`,
the choices the rules' tuples. The schema states each key's type and range; the rules
that tie keys together are the Design's alone (a component's parameters only,
``acc_width`` holding one product of the widest built width, ``widths`` at most ``n``,
``max_pack`` dividing ``n``). A test checks that every table the Design accepts, the
schema accepts too.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal, Optional, Union

from pydantic import Field, StringConstraints, TypeAdapter, create_model

from ..schema import Strict, validate
from ..spec import MAX_MASTER_BITS, MIN_MASTER_BITS, ROUNDINGS
from . import rules as R
from .core import COMPONENTS, INT_RANGES, NAME_PATTERN, Design

__all__ = ["DesignTable", "DesignDoc", "DESIGN_FILE", "check_design_file", "design_schema"]


def _types() -> dict:
    ranged = {k: Annotated[int, Field(ge=lo, le=hi, description=what)]
              for k, (what, lo, hi) in INT_RANGES.items()}
    types = {
        "component": Literal[COMPONENTS],
        "name": Annotated[str, StringConstraints(pattern=NAME_PATTERN,
                                                 max_length=R.MAX_NAME_LENGTH),
                          Field(json_schema_extra={"not": {"enum": sorted(R.VERILOG_KEYWORDS)}},
                                description="module name: a Verilog identifier, not a "
                                            "reserved word")],
        "n": Annotated[int, Field(ge=MIN_MASTER_BITS, le=MAX_MASTER_BITS,
                                  description="master width n")],
        "signed": bool,
        "views": bool,
        "widths": Annotated[list[Annotated[int, Field(ge=1, le=MAX_MASTER_BITS)]],
                            Field(min_length=1, description="the view widths built",
                                  json_schema_extra={"uniqueItems": True})],
        "overflow": Literal[R.HW_OVERFLOW_MODES],
        "view_rounding": Literal[R.VIEW_ROUNDINGS],
        "rounding": Literal[ROUNDINGS],
        "max_pack": Literal[R.PACK_FACTORS],
        "queue_depth": Literal[R.QUEUE_DEPTHS],
        **ranged,
    }
    fields = [f.name for f in dataclasses.fields(Design)]
    assert sorted(types) == sorted(fields), set(types) ^ set(fields)
    return {f.name: (types[f.name], Field(default=f.default)) for f in dataclasses.fields(Design)}


DesignTable = create_model("DesignTable", __base__=Strict, **_types())
"""Every key of a design table, each optional (its default is the Design's)."""

DesignDoc = create_model("DesignDoc", __base__=DesignTable,
                         params=(Optional[DesignTable], Field(default=None)))
"""A design file's table: the keys, and a ``params`` sub-table that may hold them too."""

DesignWrapped = create_model("DesignWrapped", __base__=Strict, design=(DesignDoc, ...))

DESIGN_FILE = Union[DesignDoc, DesignWrapped]
"""A design file: the table, or the table under one ``design`` key."""


def check_design_file(doc, *, source: str = "design"):
    """``doc`` (a parsed design file) against the schema's model: the wrapped form when
    its only key is ``design``, as ``Design.from_mapping`` reads it; one ValueError line
    otherwise. (The Design's own checks are stricter: module docstring.)"""
    wrapped = isinstance(doc, dict) and set(doc) == {"design"}
    return validate(DesignWrapped if wrapped else DesignDoc, doc, source=source)


def design_schema() -> dict:
    """The JSON Schema of a design file (``schemas/design.schema.json``)."""
    doc = TypeAdapter(DESIGN_FILE).json_schema()
    for d in doc.get("$defs", {}).values():  # no default shown for what is derived
        for prop in d.get("properties", {}).values():
            if "default" in prop and prop["default"] is None:
                del prop["default"]
    return {**doc, "title": "dqt_hw design",
            "description": "A design file (TOML; docs/design.md): the parameters of one "
                           "generated component. Types and ranges of each key; the rules "
                           "between keys are checked by dqt_hw.design.Design."}
