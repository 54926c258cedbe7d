"""The weight cache and the fast paths' intake of code arrays.

Prepared forms of a weight array (packed bytes, centred float matrices, per-channel
sums, view tables, tuners) are kept in its cache entry while the caller's array is
unchanged: an entry keeps a private copy of the codes it was made from and is used only
after a byte-for-byte comparison with the array passed in (vectorised, over Numba's
threads for large arrays), so a weight array modified in place (or a new one at a
recycled address) is never served stale data.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from numba import njit, prange

from .. import settings
from .runtime import threads

FAST_DTYPES = frozenset(
    np.dtype(t) for t in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64)
)
"""Integer dtypes the fast paths take as they are (no int64 copy)."""

@njit(cache=True, nogil=True)
def same_words(a, b):
    """a == b for two flat arrays of the same length and dtype (vectorised, in blocks)."""
    n = a.shape[0]
    step = 4096
    for s in range(0, n, step):
        e = min(n, s + step)
        aa = a[s:e]
        bb = b[s:e]
        d = a[0] ^ a[0]
        for i in range(e - s):  # from 0 (no negative-index test): vectorises
            d |= aa[i] ^ bb[i]
        if d != 0:
            return False
    return True


@njit(cache=True, parallel=True)
def same_words_par(a, b):
    """``same_words`` in pieces over Numba's threads (large weight arrays: the
    comparison is bound by memory bandwidth, which two cores nearly double here)."""
    n = a.shape[0]
    nb = 16
    step = (n + nb - 1) // nb
    diff = np.zeros(nb, dtype=np.uint8)
    for i in prange(nb):
        s = i * step
        e = min(n, s + step)
        if e > s:
            aa = a[s:e]
            bb = b[s:e]
            d = a[0] ^ a[0]
            for j in range(e - s):
                d |= aa[j] ^ bb[j]
            diff[i] = d != 0
    return not diff.any()


class WeightCache:
    """Prepared float weights, reused while the caller's weight array is unchanged.

    An entry keeps a private copy of the codes it was made from and is used only after
    a byte-for-byte comparison with the array passed in, so a weight array modified in
    place (or a new one at a recycled address) is never served stale data."""

    def __init__(self, size=settings.WEIGHT_CACHE_SIZE):
        self.size = size
        self.entries = OrderedDict()
        self.lock = threading.Lock()

    @staticmethod
    def key(w):
        return (w.__array_interface__["data"][0], w.shape, w.dtype.str)

    def lookup(self, w):
        k = self.key(w)
        with self.lock:
            e = self.entries.get(k)
        if e is None:
            return None
        if not same_bytes(w, e["copy"]):
            with self.lock:
                self.entries.pop(k, None)
            return None
        with self.lock:
            self.entries.move_to_end(k)
        return e

    def insert(self, w, lo, hi):
        e = {"copy": w.copy(), "lo": lo, "hi": hi, "prep": {}}
        with self.lock:
            self.entries[self.key(w)] = e
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return e



def same_bytes(a, b):
    """Byte-for-byte equality of two C-contiguous arrays of the same shape and dtype."""
    a = a.reshape(-1).view(np.uint8)
    b = b.reshape(-1).view(np.uint8)
    n8 = a.shape[0] // 8 * 8
    if n8 and a.ctypes.data % 8 == 0 and b.ctypes.data % 8 == 0:
        a8, b8 = a[:n8].view(np.uint64), b[:n8].view(np.uint64)
        par = n8 // 8 >= settings.PAR_COMPARE and threads().count() > 1
        if not (same_words_par(a8, b8) if par else same_words(a8, b8)):
            return False
        a, b = a[n8:], b[n8:]
    return a.shape[0] == 0 or same_words(a, b)


_WCACHE = WeightCache()


def weight_entry(w):
    """A cache entry for the C-contiguous weight array ``w`` (None for small ones)."""
    if w.size < settings.CACHE_MIN_SIZE:
        return None
    return _WCACHE.lookup(w)



def codes(name, x, as_codes, limit):
    """(array, lo, hi): ``x`` validated exactly as ``as_codes(name, x, -limit, limit)``
    would (same errors), but kept in its own small integer dtype when it has one."""
    if isinstance(x, np.ndarray) and x.dtype in FAST_DTYPES:
        if x.size == 0:
            return np.ascontiguousarray(x), 0, 0
        lo, hi = int(x.min()), int(x.max())
        if lo < -limit or hi > limit:
            as_codes(name, x, -limit, limit)  # raises the standard error
        return np.ascontiguousarray(x), lo, hi
    x = as_codes(name, x, -limit, limit)
    if x.size == 0:
        return x, 0, 0
    return x, int(x.min()), int(x.max())


def weight_codes(name, w, as_codes, limit):
    """As ``codes``, plus the weight-cache entry (None for small weights); a cached
    array's codes were range-checked when it was entered."""
    if isinstance(w, np.ndarray) and w.dtype in FAST_DTYPES and w.flags.c_contiguous:
        e = weight_entry(w)
        if e is not None:
            return w, e["lo"], e["hi"], e
    w, lo, hi = codes(name, w, as_codes, limit)
    e = _WCACHE.insert(w, lo, hi) if w.size >= settings.CACHE_MIN_SIZE else None
    return w, lo, hi, e
