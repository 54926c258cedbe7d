"""The generated hardware packaged for integrators (docs/ip.md).

- ``dqt_hw.ip.core``: the FuseSoC core ``dqt_hw.core`` at the repository root (CAPI2),
  written from the reference designs and the golden cases their benches run;
- ``dqt_hw.ip.fusesoc_gen``: the FuseSoC generator (``dqt_hw:dqt_hw:dqt_hw``'s
  ``dqt_hw_gen``): a design's parameters in, its Verilog and a generated core out;
- ``dqt_hw.ip.ipxact``: an IEEE 1685-2014 (IP-XACT) component from a design's JSON
  sidecar; ``dqt_hw.ip.xsd`` validates it against the standard's schema;
- ``dqt_hw.ip.cli``: ``dqt-hw ipxact``.

Names: every package of this project has the vendor and library ``dqt_hw``; the FuseSoC
core is ``dqt_hw:dqt_hw:dqt_hw:<version>``, and the IP-XACT component of a design is
``dqt_hw:dqt_hw:<module>:<version>``, with the version of the Python package.
"""

from __future__ import annotations

__all__ = ["VENDOR", "LIBRARY", "CORE_NAME", "version", "core_vlnv", "component_vlnv"]

VENDOR = "dqt_hw"
LIBRARY = "dqt_hw"
CORE_NAME = "dqt_hw"


def version() -> str:
    """The version of the installed ``dqt_hw`` distribution (pyproject.toml's), or of the
    pyproject.toml beside the package when it is run from a checkout not installed."""
    from importlib import metadata
    from pathlib import Path

    try:
        return metadata.version("dqt_hw")
    except metadata.PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        with open(pyproject, "rb") as f:
            return tomllib.load(f)["project"]["version"]


def core_vlnv() -> str:
    """``vendor:library:name:version`` of the FuseSoC core."""
    return f"{VENDOR}:{LIBRARY}:{CORE_NAME}:{version()}"


def component_vlnv(module: str) -> tuple[str, str, str, str]:
    """(vendor, library, name, version) of the IP-XACT component of ``module``."""
    return VENDOR, LIBRARY, module, version()
