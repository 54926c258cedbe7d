"""Running a sweep: a local process pool (default) or a Dask distributed cluster, resumable.

Every finished point is appended at once to ``<out>/points.jsonl`` (one JSON object per
line, with its key). A rerun with the same output directory reads that file first and
evaluates only the points whose key is not there, so an interrupted sweep resumes where it
stopped. At the end the table of all points of the grid (in grid order) is written as
``<out>/sweep.csv`` and ``<out>/sweep.parquet``.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from ..files import atomic_path
from .points import evaluate, point_key

__all__ = ["run_sweep", "load_done", "write_table"]


def load_done(out) -> dict:
    """{key: row} of the points already in ``<out>/points.jsonl`` (a torn last line from
    an interruption is ignored)."""
    p = Path(out) / "points.jsonl"
    done = {}
    if p.exists():
        for line in p.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and "key" in row:
                done[row["key"]] = row
    return done


def _progress(total, enabled, desc):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc=desc, unit="point", file=sys.stderr)


def run_sweep(points, out, *, scheduler=None, workers=None, progress=True,
              evaluate_fn=evaluate) -> list[dict]:
    """Evaluate every point not yet finished in ``out``; return all rows in grid order.

    ``scheduler``: None for a local process pool of ``workers`` processes (default: the
    CPU count), or a Dask scheduler address (``tcp://host:port``) or a
    ``distributed.Client``.
    """
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"workers must be a positive integer (None: the CPU count), "
                         f"not {workers!r}")
    out = Path(out)
    os.makedirs(out, exist_ok=True)
    keys = [point_key(p) for p in points]
    done = load_done(out)
    todo = [(k, p) for k, p in zip(keys, points) if k not in done]
    todo = list({k: (k, p) for k, p in todo}.values())  # duplicates once
    bar = _progress(len(todo), progress and todo, "sweep")
    path = out / "points.jsonl"
    torn = path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n")
    jsonl = path.open("a")
    if torn:  # an interrupted write left half a line: end it, so the next line is whole
        jsonl.write("\n")

    def record(row):
        done[row["key"]] = row
        jsonl.write(json.dumps(row, default=_plain) + "\n")
        jsonl.flush()
        if bar is not None:
            bar.update(1)

    try:
        if todo and scheduler is None:
            workers = workers or os.cpu_count() or 1
            if workers == 1:
                for _, p in todo:
                    record(evaluate_fn(p))
            else:
                # a fresh interpreter per worker: forking a process whose Numba kernels
                # already started OpenMP threads aborts it
                ctx = multiprocessing.get_context(
                    "forkserver" if "forkserver" in multiprocessing.get_all_start_methods()
                    else "spawn")
                with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                    futs = [pool.submit(evaluate_fn, p) for _, p in todo]
                    for f in as_completed(futs):
                        record(f.result())
        elif todo:
            _run_dask(todo, scheduler, evaluate_fn, record)
    finally:
        jsonl.close()
        if bar is not None:
            bar.close()
    rows = [done[k] for k in dict.fromkeys(keys)]
    write_table(rows, out)
    return rows


def _run_dask(todo, scheduler, evaluate_fn, record):
    from distributed import Client, as_completed as dask_completed

    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        futs = client.map(evaluate_fn, [p for _, p in todo], key=[f"dqt-point-{k}" for k, _ in todo],
                          pure=False)
        for f in dask_completed(futs):
            record(f.result())
    finally:
        if own:
            client.close()


def _plain(v):
    try:
        import numpy as np

        if isinstance(v, np.generic):
            return v.item()
    except ImportError:  # pragma: no cover
        pass
    return str(v)


def write_table(rows, out) -> tuple[Path, Path]:
    """``sweep.csv`` and ``sweep.parquet`` with one row per point (each replaced
    atomically: a reader sees the previous table or the new one, never a part)."""
    out = Path(out)
    cols = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    csv_path = out / "sweep.csv"
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) for k in cols})
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({k: [_cell(r.get(k)) for r in rows] for k in cols})
    pq_path = out / "sweep.parquet"
    with atomic_path(pq_path) as tmp:
        pq.write_table(table, tmp)
    return csv_path, pq_path


def _cell(v):
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v)
    return v
