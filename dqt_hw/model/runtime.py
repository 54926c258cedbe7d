"""Threads of the fast paths: the worker pool and its OpenBLAS binding, Numba's thread
count per calling thread, ``serial_scope``, and the ``Tuner`` that picks serial or
threaded execution for a recurring call.

- **the pool** (``threads()``): the calling thread and up to ``count() - 1`` workers take
  units of work from a shared counter; each thread runs its units on one core with
  NumPy's OpenBLAS set to one thread for that thread only
  (``openblas_set_num_threads_local``), so OpenBLAS's own pool never competes with
  ours.
- **small work** (below ``settings.SERIAL_WORK`` multiply-adds) runs in the calling
  thread with OpenBLAS at one thread: handing it to another thread costs more than it
  saves, most of all on a busy machine.

Threads never change a result: every unit computes its own outputs.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import settings


class Tuner:
    """Serial or threaded, for one recurring call (a layer, a weight array and shape):
    after a warm-up call it times ``settings.TUNER_SAMPLES`` calls each way, alternating,
    and keeps the way of the faster best call, trying again every
    ``settings.TUNER_RETUNE`` calls (the load of a shared machine changes). Both ways
    compute the very same integers; only the time differs. On a machine whose second
    core is busy with other work, or is a sibling of the first, a second thread only adds
    overhead. (One call each way let one delayed call fix the slower way for the next
    64 calls: a benchmark row then ran at half its speed.)"""

    def __init__(self):
        self.calls = 0
        self.times = {True: [], False: []}
        self.choice = None

    def pick(self) -> bool:
        """True: run serially this call."""
        self.calls += 1
        if self.calls % settings.TUNER_RETUNE == 0:
            self.times = {True: [], False: []}
            self.choice = None
        if self.choice is not None:
            return self.choice
        if self.calls == 1:
            return False  # warm-up (compilation, prepared weights): not timed
        return len(self.times[True]) <= len(self.times[False])

    def record(self, serial: bool, dt: float):
        if self.calls == 1 or self.choice is not None:
            return
        self.times[serial].append(dt)
        n = settings.TUNER_SAMPLES
        if len(self.times[True]) >= n and len(self.times[False]) >= n:
            self.choice = min(self.times[True]) <= min(self.times[False])


_LOCAL = threading.local()


def numba_threads(n):
    """Numba's thread count for this thread's next parallel regions: n, or back to the
    count it had before (None)."""
    import numba

    if n is None:
        old = getattr(_LOCAL, "numba_threads", None)
        if old is not None:
            numba.set_num_threads(old)
            _LOCAL.numba_threads = None
        return
    cur = numba.get_num_threads()
    if cur != n:
        _LOCAL.numba_threads = cur
        numba.set_num_threads(n)


class serial_scope:
    """``with serial_scope():`` the fast paths called from this thread run in it alone
    (``Threads.count()`` is 1 here), for callers that already keep every core busy
    with work of their own (the network executor's batch parts)."""

    def __enter__(self):
        self.old = getattr(_LOCAL, "serial", False)
        _LOCAL.serial = True
        return self

    def __exit__(self, *exc):
        _LOCAL.serial = self.old
        return False


def tuned(tuner, work, nt, serial_work=None):
    """(serial?, start time) for a call of ``work`` multiply-adds."""
    if work < (settings.SERIAL_WORK if serial_work is None else serial_work) or nt <= 1:
        return True, None
    if tuner is None:
        return False, None
    return tuner.pick(), time.perf_counter()


def tuned_done(tuner, serial, t0):
    """Tell ``tuner`` how long the call started at t0 (``tuned``) took."""
    if t0 is not None:
        tuner.record(serial, time.perf_counter() - t0)


class Threads:
    """Worker threads for the fast paths.

    ``run(unit, n)`` calls ``unit(i)`` for i in range(n): the calling thread and up to
    ``count() - 1`` workers take the next unit from a shared counter until none is left,
    so a thread the OS leaves waiting holds back at most one unit. Each thread sets
    NumPy's OpenBLAS to one thread for itself alone (``openblas_set_num_threads_local``),
    so a unit runs its im2col, GEMMs and finish on one core and no two thread pools
    compete for the cores. Without that OpenBLAS entry point, or with one thread, the
    units run in the calling thread and OpenBLAS keeps its own threading.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.pool = None
        self.n = 0
        self.set_local = openblas_set_local()

    def _init_worker(self):
        self.set_local(1)

    _cpus = os.cpu_count() or 1

    def count(self) -> int:
        if getattr(_LOCAL, "serial", False):
            return 1  # inside ``serial_scope``: this thread does its work alone
        try:
            import numba

            n = numba.get_num_threads()
        except Exception:  # pragma: no cover
            n = self._cpus
        return max(1, min(n, self._cpus))

    def run(self, unit, n, blas=True, work=None):
        """unit(i) for i in range(n), spread over the threads. ``blas``: the units call
        OpenBLAS (so they need its per-thread setting to share the cores). ``work``: the
        multiply-adds of all units; below ``settings.SERIAL_WORK`` they run in the calling
        thread (handing work to another thread costs more than it saves)."""
        nt = min(self.count(), n)
        if work is not None and work < settings.SERIAL_WORK:
            nt = 1
        if nt <= 1 or (blas and self.set_local is None):
            # OpenBLAS's own threads, waking for each small GEMM, cost far more than
            # they bring here: one thread for this caller while its units run
            local = blas and self.set_local is not None
            if local:
                self.set_local(1)
            try:
                for i in range(n):
                    unit(i)
            finally:
                if local:
                    self.set_local(0)
            return
        counter = iter(range(n))
        take = threading.Lock()
        errors = []

        def loop():
            try:
                while True:
                    with take:
                        i = next(counter, None)
                    if i is None or errors:
                        return
                    unit(i)
            except BaseException as e:  # pragma: no cover - re-raised below
                errors.append(e)

        with self.lock:
            if self.pool is None or self.n < nt - 1:
                if self.pool is not None:
                    self.pool.shutdown(wait=False)
                self.n = nt - 1
                init = self._init_worker if self.set_local is not None else None
                self.pool = ThreadPoolExecutor(self.n, thread_name_prefix="dqt_hw_fast",
                                               initializer=init)
            pool = self.pool
        futs = [pool.submit(loop) for _ in range(nt - 1)]
        local = blas and self.set_local is not None
        if local:
            self.set_local(1)
        try:
            loop()
        finally:
            if local:
                self.set_local(0)  # back to OpenBLAS's global setting
            for f in futs:
                # a worker the OS has not started yet has nothing to finish: drop it
                if not f.cancel():
                    f.result()
        if errors:
            raise errors[0]


def openblas_set_local():
    """A function setting ``openblas_set_num_threads_local`` (OpenBLAS >= 0.3.27) of every
    OpenBLAS loaded in the process (NumPy's among them) for the calling thread, or None."""
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({ln.split()[-1] for ln in f
                            if "openblas" in os.path.basename(ln.split()[-1]).lower()
                            and ".so" in os.path.basename(ln.split()[-1])})
    except OSError:
        return None
    fns = []
    for p in paths:
        try:
            fn = ctypes.CDLL(p).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_int]
        fn.restype = ctypes.c_int
        fns.append(fn)
    if not fns:
        return None

    def set_local(n):
        for fn in fns:
            fn(n)

    return set_local


_THREADS = None


def threads() -> Threads:
    """The process's one ``Threads`` pool (made on first use, with NumPy's BLAS loaded)."""
    global _THREADS
    if _THREADS is None:
        np.ones((2, 2)) @ np.ones((2, 2))  # make sure NumPy's BLAS is loaded
        _THREADS = Threads()
    return _THREADS


def thread_count() -> int:
    """Threads the fast paths use from this thread (1 inside ``serial_scope``)."""
    return threads().count()


def par_range(fn, n, work):
    """fn(a, b) over pieces [a, b) of range(n): in the calling thread for small ``work``
    (below ``settings.PAR_MIN_WORK``), else one piece per thread of the pool (the
    kernels release the GIL)."""
    if n <= 0:
        return
    if work < settings.PAR_MIN_WORK or n == 1:
        fn(0, n)
        return
    th = threads()
    parts = min(n, 2 * th.count())
    step = -(-n // parts)
    th.run(lambda i: fn(i * step, min(n, (i + 1) * step)), -(-n // step), blas=False)


def run_units(unit, n):
    """unit(i) for i in range(n) over the pool's threads (units that call no BLAS)."""
    threads().run(unit, n, blas=False)
