"""A 64-bit perceptual hash (DCT pHash) and the Hamming distance between two hashes.

The image is reduced to 32x32 luma, transformed with a 2-D DCT-II, and the 8x8 lowest
frequencies are compared with their median (the DC term is left out of the median, as it only
says how bright the image is). Re-encoding, resizing and mild colour changes flip few bits;
a different view flips about half.

Why not the ``imagehash`` package: it takes SciPy (tens of MB) for one 32x32 DCT, and its
median includes the DC term; this is the same transform in a few lines of numpy, which the
checks already use.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

HASH_SIZE = 8
_SAMPLE = 32


def dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II matrix C, so that C @ x is the DCT of the column vector x."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    c: np.ndarray = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    c[0] /= np.sqrt(2.0)
    return c


_DCT = dct_matrix(_SAMPLE)
_DCT.setflags(write=False)  # a constant computed once per process


def phash(gray: np.ndarray) -> int:
    """The 64-bit pHash of a luma image (2-D uint8 array), as an unsigned int."""
    small = Image.fromarray(np.ascontiguousarray(gray, dtype=np.uint8), "L").resize(
        (_SAMPLE, _SAMPLE), Image.Resampling.BOX
    )
    x = np.asarray(small, dtype=np.float64)
    low = (_DCT @ x @ _DCT.T)[:HASH_SIZE, :HASH_SIZE].ravel()
    # The margin keeps float round-off from setting bits in a flat image (all AC terms ~0).
    median = float(np.median(low[1:])) + 1e-9 * (1.0 + abs(float(low[0])))
    bits = low > median
    return int(sum(1 << i for i, bit in enumerate(bits) if bit))


def hamming(a: int, b: int) -> int:
    """How many of the 64 bits differ."""
    return (a ^ b).bit_count()
