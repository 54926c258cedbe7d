"""Merge the functional-coverage databases of a regression and report every bin.

Each simulation exports its cocotb-coverage database as YAML into the coverage directory
(``sim_build/coverage`` unless ``SIM_COVERAGE_DIR``); this sums the hits of every bin over
all of them (configurations and pytest-xdist workers alike), writes the merged database
(``merged.yml``) and a text report (``report.txt``) listing each cover point's percentage
and its missing bins.

    python -m sim.coverage_report [DIR] [--require-full]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

DEFAULT_DIR = Path(__file__).resolve().parents[1] / "sim_build" / "coverage"


def merge(files) -> dict:
    """{cover point: {bin: hits}} summed over ``files``."""
    merged: dict = {}
    for f in files:
        with open(f) as fh:
            db = yaml.safe_load(fh) or {}
        for name, item in db.items():
            bins = item.get("bins:_hits")
            if bins is None:
                continue
            acc = merged.setdefault(name, {})
            for b, hits in bins.items():
                acc[str(b)] = acc.get(str(b), 0) + int(hits)
    return merged


def report(merged: dict, title: str = "") -> tuple[str, int, int]:
    lines = [f"functional coverage{': ' + title if title else ''}"]
    total = covered = 0
    for name in sorted(merged):
        bins = merged[name]
        hit = sum(1 for v in bins.values() if v > 0)
        total += len(bins)
        covered += hit
        pct = 100.0 * hit / len(bins) if bins else 100.0
        lines.append(f"  {name:<34} {hit:>4}/{len(bins):<4} {pct:6.1f}%")
        missing = [b for b, v in bins.items() if v == 0]
        if missing:
            shown = ", ".join(missing[:12]) + (f", ... (+{len(missing) - 12})" if len(missing) > 12 else "")
            lines.append(f"      missing: {shown}")
    pct = 100.0 * covered / total if total else 0.0
    lines.append(f"  TOTAL {covered}/{total} bins ({pct:.1f}%)")
    return "\n".join(lines) + "\n", covered, total


def merge_dir(directory=DEFAULT_DIR, title: str = "") -> tuple[str, int, int]:
    directory = Path(directory)
    files = sorted(p for p in directory.glob("*.yml") if p.name != "merged.yml")
    if not files:
        return "functional coverage: no databases found\n", 0, 0
    merged = merge(files)
    with open(directory / "merged.yml", "w") as fh:
        yaml.safe_dump(merged, fh, sort_keys=True)
    text, covered, total = report(merged, title or f"{len(files)} simulations")
    (directory / "report.txt").write_text(text)
    return text, covered, total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", nargs="?", default=str(DEFAULT_DIR))
    ap.add_argument("--require-full", action="store_true",
                    help="exit status 1 unless every bin is covered")
    args = ap.parse_args(argv)
    text, covered, total = merge_dir(args.dir)
    sys.stdout.write(text)
    print(f"report: {Path(args.dir) / 'report.txt'}")
    if args.require_full and covered < total:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
