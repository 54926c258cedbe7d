"""The tensors of a network file: its ``.npz``, beside the JSON and checked against its
SHA-256 before it is parsed, then read member by member, each ``.npy`` header (dtype,
shape) checked against what the network declares before anything is allocated.

- integer tensors (``w`` codes, ``K``, ``S``): ``int8`` .. ``int64``, ``uint8`` ..
  ``uint32`` (:data:`INT_DTYPES`; ``uint64`` is refused: 2^64 - 1 would become -1 as the
  executor's int64), float tensors (``w_m``, ``w_delta``, ``bias``): ``float32``,
  ``float64``; object arrays are never unpickled;
- shapes as the graph needs them, at most :data:`MAX_TENSOR_ELEMENTS` elements each;
- a member the network does not name is refused (a file from another network).

The values (codes within n bits, K within ``const_bits``, S within the shifts the
arithmetic takes) are checked by :class:`dqt_hw.net.Network`. Every failure is one
ValueError line naming the file and the tensor.
"""

from __future__ import annotations

import hashlib
import io
import math
import zipfile
from pathlib import Path

import numpy as np

from ..schema import ARRAY_ERRORS, first_line, nearest, npy_header, read_bounded
from .graph import MAX_CHANNELS, MAX_NODES, MAX_WEIGHTS

__all__ = ["Tensors", "tensors_path", "INT_DTYPES", "FLOAT_DTYPES", "KINDS",
           "MAX_TENSORS_BYTES", "MAX_TENSOR_ELEMENTS"]

MAX_TENSORS_BYTES = 1 << 30
"""Largest ``.npz`` read (1 GiB)."""

MAX_TENSOR_ELEMENTS = MAX_WEIGHTS
"""Most elements of one tensor (a layer's weights are the largest)."""

MAX_MEMBERS = 6 * (MAX_NODES + 2)
"""Most arrays of an ``.npz`` (six per conv/fc layer)."""

INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32")
FLOAT_DTYPES = ("float32", "float64")
KINDS = {"w": INT_DTYPES, "K": INT_DTYPES, "S": INT_DTYPES,
         "w_m": FLOAT_DTYPES, "w_delta": FLOAT_DTYPES, "bias": FLOAT_DTYPES}
"""The dtypes each tensor of a layer may have."""


def tensors_path(path: Path, file: str, *, source: str) -> Path:
    """The ``.npz`` a network file names (``tensors.file``, a bare file name, validated
    by the schema): beside it, and no link leading out of its directory."""
    target = path.parent / file
    if target.resolve().parent != path.parent.resolve():
        raise ValueError(f"{source}: tensors.file {file!r} leads out of the network "
                         f"file's directory (to {str(target.resolve())!r})")
    return target


def _shape_text(shape) -> str:
    dims = ["any" if d is None else str(d) for d in shape]
    return f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"


class Tensors:
    """The arrays of the ``.npz`` at ``path`` whose SHA-256 must be ``sha256``."""

    def __init__(self, path: Path, sha256: str):
        self.path = Path(path)
        self.where = f"network tensors {str(path)!r}"
        data = read_bounded(path, what="network tensors", max_bytes=MAX_TENSORS_BYTES)
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise ValueError(
                f"{self.where}: SHA-256 {digest[:16]}... does not match the {sha256[:16]}... "
                f"recorded in the JSON (truncated or replaced file, {len(data)} bytes)")
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            names = self.zip.namelist()
        except ARRAY_ERRORS as e:
            raise ValueError(f"{self.where}: truncated or not a valid .npz ({len(data)} "
                             f"bytes; {first_line(e)})") from None
        if len(names) > MAX_MEMBERS:
            raise ValueError(f"{self.where}: {len(names)} arrays, more than the "
                             f"{MAX_MEMBERS} a network file may hold")
        odd = [n for n in names if not n.endswith(".npy")]
        if odd:
            raise ValueError(f"{self.where}: member {odd[0]!r:.80} is not a .npy array")
        self.members = {n[:-4]: n for n in names}
        if len(self.members) != len(names):
            raise ValueError(f"{self.where}: an array is stored twice")
        self.used: set[str] = set()

    def get(self, layer: str, key: str, shape: tuple) -> np.ndarray:
        """The array ``<layer>/<key>``: its dtype one of ``KINDS[key]`` and its shape
        ``shape`` (None: any size up to MAX_CHANNELS), checked before it is read."""
        name = f"{layer}/{key}"
        what = f"{self.where}: tensor {name!r}"
        if name not in self.members:
            raise ValueError(f"{what} is missing (truncated, or from another network)")
        self.used.add(name)
        member = self.members[name]
        try:
            with self.zip.open(member) as f:
                got, dtype, _ = npy_header(f, source=what)
        except ARRAY_ERRORS as e:
            if isinstance(e, ValueError) and str(e).startswith(what):
                raise
            raise ValueError(f"{what} is truncated or corrupt ({first_line(e)})") from None
        if dtype.name not in KINDS[key]:
            raise ValueError(f"{what} has dtype {dtype.name}, not one of "
                             f"{', '.join(KINDS[key])}")
        if len(got) != len(shape) or any(w is not None and g != w
                                         for g, w in zip(got, shape)):
            raise ValueError(f"{what} has shape {_shape_text(got)}, the graph needs "
                             f"{_shape_text(shape)}")
        if any(w is None and g > MAX_CHANNELS for g, w in zip(got, shape)):
            raise ValueError(f"{what} has shape {_shape_text(got)}: more than "
                             f"{MAX_CHANNELS} channels")
        if math.prod(got) > MAX_TENSOR_ELEMENTS:
            raise ValueError(f"{what} has {math.prod(got)} elements, more than the "
                             f"{MAX_TENSOR_ELEMENTS} a tensor may")
        try:
            with self.zip.open(member) as f:
                return np.lib.format.read_array(f, allow_pickle=False)
        except ARRAY_ERRORS as e:
            raise ValueError(f"{what} is truncated or corrupt ({first_line(e)})") from None

    def check_all_used(self) -> None:
        """Refuse an array that no layer of the network reads."""
        extra = sorted(set(self.members) - self.used)
        if extra:
            raise ValueError(f"{self.where}: tensor {extra[0]!r:.80} belongs to no layer of "
                             f"the network{nearest(extra[0], self.used)}")
