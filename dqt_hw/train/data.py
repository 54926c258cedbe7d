"""Data sets for training and evaluation, with nothing downloaded at run time.

- ``load_digits``: scikit-learn's 8x8 handwritten digits (ships inside the scikit-learn
  wheel): 1797 images of 1x8x8 pixels in 0..16, scaled to [0, 1], split into train and
  test with a fixed seed (stratified).
- ``load_digits_contrast``: the same split, each image scaled by its own seeded contrast
  in [1/16, 1] (log-uniform), so that the bits an input needs differ (docs/networks.md).
- ``load_cifar10(folder)``: CIFAR-10 from a local folder in its standard python-pickle
  layout (``data_batch_1`` .. ``data_batch_5`` and ``test_batch``, each a pickled dict
  with ``b"data"`` (N, 3072) uint8 rows in channel-major RGB order and ``b"labels"``),
  scaled to [0, 1] as (N, 3, 32, 32).

Only NumPy (and scikit-learn for the digits) is needed: the integer executor and
``dqt-hw run`` use these without PyTorch.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DIGITS_SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.2


@dataclass
class DataSet:
    """Images ``x`` (N, C, H, W) float64 in [0, 1] and integer labels ``y`` (N,)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def classes(self) -> int:
        return int(np.concatenate([self.y_train, self.y_test]).max()) + 1

    @property
    def shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])


def load_digits(*, seed: int = DIGITS_SPLIT_SEED, test_fraction: float = DIGITS_TEST_FRACTION
                ) -> DataSet:
    """scikit-learn's digits, split stratified by ``seed`` (default: 1437 train, 360 test)."""
    try:
        from sklearn.datasets import load_digits as _ld
    except ImportError as e:  # pragma: no cover
        raise ImportError("the digits data set needs scikit-learn "
                          "(pip install scikit-learn)") from e
    d = _ld()
    x = (d.images.astype(np.float64) / 16.0)[:, None]
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), bool)
    for c in np.unique(y):
        idx = np.nonzero(y == c)[0]
        k = int(round(len(idx) * test_fraction))
        test[rng.choice(idx, k, replace=False)] = True
    return DataSet("digits", x[~test], y[~test], x[test], y[test])


CONTRAST_SEED = 1
CONTRAST_MIN = 1.0 / 16.0


def load_digits_contrast(*, contrast_min: float = CONTRAST_MIN, seed: int = CONTRAST_SEED
                         ) -> DataSet:
    """``load_digits`` with a seeded per-input contrast of graded strength: input i is
    scaled by c_i = contrast_min ** u_i, u_i uniform in [0, 1] (drawn from ``seed`` for the
    training then the test inputs, independently of the split), so contrasts spread
    log-uniformly from ``contrast_min`` (faint: the digit spans few input codes) to 1 (the
    plain digit)."""
    if not 0.0 < contrast_min <= 1.0:
        raise ValueError(f"digits contrast minimum must be in (0, 1], not {contrast_min}")
    d = load_digits()
    rng = np.random.default_rng(seed)

    def scale(x):
        c = contrast_min ** rng.uniform(0.0, 1.0, len(x))
        return x * c[:, None, None, None]

    xtr = scale(d.x_train)
    xte = scale(d.x_test)
    name = ("digits-contrast" if contrast_min == CONTRAST_MIN
            else f"digits-contrast:{contrast_min:g}")
    return DataSet(name, xtr, d.y_train, xte, d.y_test)


# the only globals a CIFAR-10 python batch holds: how NumPy pickles its uint8 array, and
# how a protocol-2 pickle written by Python 3 stores bytes (codecs.encode of a str)
_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles the documented CIFAR-10 batch (a dict of bytes, lists of ints/bytes and
    one NumPy array) and nothing else: any other global (a class, a function: what makes a
    pickle run code) is refused."""

    def find_class(self, module, name):
        if (module, name) in _PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"global {module}.{name} is not allowed in a CIFAR-10 batch (only the NumPy "
            f"array of its documented layout)")


def _read_batch(path: Path):
    try:
        with open(path, "rb") as f:
            d = _BatchUnpickler(f, encoding="bytes").load()
    except OSError as e:
        raise ValueError(f"CIFAR-10 batch {str(path)!r} cannot be read: {e}") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, IndexError, KeyError,
            ValueError, TypeError) as e:
        raise ValueError(f"CIFAR-10 batch {str(path)!r} is not a valid CIFAR-10 pickle: "
                         f"{e}") from None
    if not isinstance(d, dict):
        raise ValueError(f"CIFAR-10 batch {str(path)!r} holds a {type(d).__name__}, not a dict")
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"CIFAR-10 batch {str(path)!r} lacks b'data' or b'labels' "
                         f"(keys {sorted(map(str, d))})")
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != 3072 or data.dtype != np.uint8:
        raise ValueError(f"CIFAR-10 batch {str(path)!r}: data must be uint8 (N, 3072), not "
                         f"{data.dtype} {data.shape}")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (data.shape[0],):
        raise ValueError(f"CIFAR-10 batch {str(path)!r}: {data.shape[0]} images but "
                         f"{labels.shape} labels")
    return data.reshape(-1, 3, 32, 32).astype(np.float64) / 255.0, labels


def load_cifar10(folder, *, train_batches=5) -> DataSet:
    """CIFAR-10 from ``folder`` (the extracted ``cifar-10-batches-py``)."""
    folder = Path(folder)
    xs, ys = [], []
    for i in range(1, train_batches + 1):
        x, y = _read_batch(folder / f"data_batch_{i}")
        xs.append(x)
        ys.append(y)
    xt, yt = _read_batch(folder / "test_batch")
    return DataSet("cifar10", np.concatenate(xs), np.concatenate(ys), xt, yt)


def load(name: str) -> DataSet:
    """``"digits"``, ``"digits-contrast"``, ``"digits-contrast:MIN"`` or ``"cifar10:FOLDER"``."""
    if name == "digits":
        return load_digits()
    if name == "digits-contrast":
        return load_digits_contrast()
    if name.startswith("digits-contrast:"):
        v = name.split(":", 1)[1]
        try:
            cmin = float(v)
        except ValueError:
            raise ValueError(f"digits-contrast:MIN needs a number, not {v!r}") from None
        return load_digits_contrast(contrast_min=cmin)
    if name.startswith("cifar10:"):
        return load_cifar10(name.split(":", 1)[1])
    raise ValueError(f"data set must be 'digits', 'digits-contrast', 'digits-contrast:MIN' or "
                     f"'cifar10:FOLDER', not {name!r}")


MAX_USER_DATA_BYTES = 1 << 32
"""Largest .npy/.npz file of the user's own inputs read (4 GiB)."""


def _user_array(path: Path, what: str):
    """The array(s) of a .npy (an ndarray) or .npz (a dict of ndarrays) file, read without
    pickles."""
    from ..schema import read_bounded

    raw = read_bounded(path, what=what, max_bytes=MAX_USER_DATA_BYTES)
    try:
        obj = np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{what} file {str(path)!r} is not a .npy or .npz array file ({e})") from None
    if isinstance(obj, np.lib.npyio.NpzFile):
        with obj:
            return {k: obj[k] for k in obj.files}
    return obj


def _check_inputs(x, src, shape=None) -> np.ndarray:
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"{src}: dtype {x.dtype} is not a number type")
    want = "(N >= 1, C, H, W)" if shape is None else f"(N >= 1, {', '.join(map(str, shape))})"
    if x.ndim != 4 or x.shape[0] < 1 or (shape is not None and tuple(x.shape[1:]) != tuple(shape)):
        raise ValueError(f"{src}: shape {x.shape} is not {want}")
    x = x.astype(np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{src}: value at {at} is {float(x[at])!r}, not finite")
    return x


def _check_labels(y, n, src) -> np.ndarray:
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{src}: dtype {y.dtype} is not an integer type (class indices)")
    if y.shape != (n,):
        raise ValueError(f"{src}: shape {y.shape} is not ({n},) (one label per input)")
    if n and y.min() < 0:
        raise ValueError(f"{src}: label {int(y.min())} is negative")
    return y.astype(np.int64)


def load_arrays(path, labels=None, *, shape=None) -> DataSet:
    """The user's own data: a ``.npz`` with ``x`` (N, C, H, W) float inputs and ``y`` (N,)
    integer labels, optionally ``x_cal``/``y_cal`` (calibration inputs for the knapsack's
    layer sensitivities; never the test inputs), or a ``.npy`` of inputs with ``labels``
    a ``.npy`` of labels. The inputs are the test set; ``x_train`` holds the calibration
    inputs (none: empty). ``shape`` (C, H, W) is the network's input, checked."""
    path = Path(path)
    obj = _user_array(path, "data")
    src = f"data file {str(path)!r}"
    if isinstance(obj, dict):
        if labels is not None:
            raise ValueError(f"{src} is an .npz (its labels are its 'y'): --labels does not "
                             f"apply")
        for k in ("x", "y"):
            if k not in obj:
                raise ValueError(f"{src} has no array {k!r} (an .npz needs 'x' (N, C, H, W) "
                                 f"and 'y' (N,); it has {sorted(obj)})")
        extra = sorted(set(obj) - {"x", "y", "x_cal", "y_cal"})
        if extra:
            raise ValueError(f"{src}: unknown array {extra[0]!r} (known: x, y, x_cal, y_cal)")
        if ("x_cal" in obj) != ("y_cal" in obj):
            raise ValueError(f"{src}: 'x_cal' and 'y_cal' go together")
        x = _check_inputs(obj["x"], f"{src}, array 'x'", shape)
        y = _check_labels(obj["y"], len(x), f"{src}, array 'y'")
        if "x_cal" in obj:
            xc = _check_inputs(obj["x_cal"], f"{src}, array 'x_cal'", x.shape[1:])
            yc = _check_labels(obj["y_cal"], len(xc), f"{src}, array 'y_cal'")
        else:
            xc, yc = np.zeros((0,) + x.shape[1:]), np.zeros(0, np.int64)
    else:
        x = _check_inputs(obj, src, shape)
        if labels is None:
            raise ValueError(f"{src} holds inputs only: pass their labels with --labels "
                             f"Y.npy, or an .npz with 'x' and 'y'")
        lab = _user_array(Path(labels), "labels")
        if isinstance(lab, dict):
            raise ValueError(f"labels file {str(labels)!r} is an .npz, not one .npy array")
        y = _check_labels(lab, len(x), f"labels file {str(labels)!r}")
        xc, yc = np.zeros((0,) + x.shape[1:]), np.zeros(0, np.int64)
    return DataSet(f"file:{path.name}", xc, yc, x, y)


def is_file_spec(name: str) -> bool:
    """Whether a ``--data`` value names a file of the user's own data (.npy / .npz)."""
    return str(name).lower().endswith((".npy", ".npz"))


def load_inputs(path, *, shape=None) -> np.ndarray:
    """The inputs (N, C, H, W) of the user's data file: a ``.npy`` of inputs, or the ``x``
    of an ``.npz`` (labels are not needed)."""
    path = Path(path)
    obj = _user_array(path, "data")
    src = f"data file {str(path)!r}"
    if isinstance(obj, dict):
        if "x" not in obj:
            raise ValueError(f"{src} has no array 'x' (N, C, H, W) (it has {sorted(obj)})")
        return _check_inputs(obj["x"], f"{src}, array 'x'", shape)
    return _check_inputs(obj, src, shape)
