"""``python -m dqt_hw.schema [DIR]``: write the published JSON Schemas (default
``schemas/``); ``--check``: exit 1 when a file there differs from a fresh generation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..files import atomic_write_text
from . import schema_documents


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m dqt_hw.schema", description=__doc__)
    p.add_argument("dir", nargs="?", default="schemas", type=Path)
    p.add_argument("--check", action="store_true",
                   help="compare with the files in DIR instead of writing them")
    args = p.parse_args(argv)
    docs = schema_documents()
    if args.check:
        stale = [n for n, text in docs.items()
                 if not (args.dir / n).is_file() or (args.dir / n).read_text() != text]
        extra = sorted(f.name for f in args.dir.glob("*.schema.json") if f.name not in docs)
        for n in stale:
            print(f"{args.dir / n}: out of date (make schemas)", file=sys.stderr)
        for n in extra:
            print(f"{args.dir / n}: no format of that name", file=sys.stderr)
        return 1 if stale or extra else 0
    args.dir.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        atomic_write_text(args.dir / name, text)
        print(args.dir / name)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
