"""The operands of the exact integer kernel, packed (private): the weights in blocks of
``NB`` output channels, the tap and pixel offsets into a padded channels-last block of
bytes. Every level reads these layouts (``_simd``'s vector kernels and ``_amx``'s
tiles); see ``_simd``'s module notes for the layout and ``_amx``'s for the tiles."""

from __future__ import annotations

import numpy as np

NB = 64  # output channels per weight block (4 vectors of 16 int32 lanes; 4 AMX C tiles)
STEP_K4 = 16  # rows of four k per AMX tile step (16 rows x 64 bytes of a B tile)


def steps(nk4: int) -> int:
    """Tile steps of ``STEP_K4`` rows for nk4 groups of four k (a block's rows)."""
    return -(-nk4 // STEP_K4)


def pad4(c: int) -> int:
    return -(-c // 4) * 4


def pack_weights(wg, ow):
    """(wp, woff, nvs, Np) for one group's weights wg (Og, Cg, kh, kw): ws = w - ow as
    int8 (the caller has checked the range), k in (ky, kx, c) order with c padded to a
    multiple of four, in blocks of NB output channels (the last one of 16 nv, padded
    with zero weights). Each block's K4 = kh kw Cp / 4 rows are followed by zero rows up
    to a whole number of AMX tile steps (``steps``), which only the AMX level reads."""
    Og, Cg, kh, kw = wg.shape
    Cp = pad4(Cg)
    Np = -(-Og // 16) * 16
    K4 = kh * kw * Cp // 4
    K4p = steps(K4) * STEP_K4
    full = np.zeros((kh, kw, Cp, Np), dtype=np.int8)
    full[:, :, :Cg, :Og] = (wg.astype(np.int64) - ow).transpose(2, 3, 1, 0)
    full = np.concatenate([full.reshape(K4, 4, Np), np.zeros((K4p - K4, 4, Np), np.int8)])
    blocks, woff, nvs = [], [], []
    pos = 0
    for n0 in range(0, Np, NB):
        n1 = min(Np, n0 + NB)
        blk = np.ascontiguousarray(full[:, :, n0:n1].transpose(0, 2, 1)).reshape(-1)
        blocks.append(blk)
        woff.append(pos)
        nvs.append((n1 - n0) // 16)
        pos += blk.size
    wp = np.concatenate(blocks) if blocks else np.zeros(0, np.int8)
    return wp, np.array(woff, np.int64), np.array(nvs, np.int64), Np


def tap_offsets(kh, kw, Cp, Wp):
    """koff[k4] for k4 = (ky, kx, c4): the byte offset of four channels of a tap in the
    padded NHWC image, relative to the window's corner."""
    ky, kx, c4 = np.meshgrid(np.arange(kh), np.arange(kw), np.arange(Cp // 4), indexing="ij")
    return np.ascontiguousarray(((ky * Wp + kx) * Cp + 4 * c4).reshape(-1), dtype=np.int64)


def pixel_offsets(Nb, Hp, Wp, Cp, Ho, Wo, stride):
    """rows[m] for the output pixels m = (n, oy, ox): the byte offset of the window's
    corner in the NHWC block (a caller pads its own ranges to whole micro-tiles)."""
    n, oy, ox = np.meshgrid(np.arange(Nb), np.arange(Ho), np.arange(Wo), indexing="ij")
    r = (((n * Hp + oy * stride) * Wp + ox * stride) * Cp).reshape(-1).astype(np.int64)
    return np.ascontiguousarray(r)
