"""The DCT pHash: a correct DCT, stable under re-encoding, different for different pictures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from qc_tool.domain.checks.decode import decode_gray
from qc_tool.domain.checks.phash import dct_matrix, hamming, phash
from qc_tool.domain.checks.pixels import analyse_pixels

from .scenes import reencode, shot


def test_the_dct_matrix_is_orthonormal_and_matches_the_textbook_formula() -> None:
    c = dct_matrix(8)
    assert np.allclose(c @ c.T, np.eye(8))
    x = np.arange(8, dtype=np.float64) ** 1.5
    naive = [
        sum(x[i] * math.cos(math.pi * (2 * i + 1) * k / 16) for i in range(8))
        * math.sqrt((1 if k == 0 else 2) / 8)
        for k in range(8)
    ]
    assert np.allclose(c @ x, naive)


def test_hamming_counts_differing_bits() -> None:
    assert hamming(0, 0) == 0
    assert hamming(0b1011, 0b0001) == 2
    assert hamming(0, 2**64 - 1) == 64


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    original = shot(51)
    return {
        "original": original,
        "q70": reencode(original, 70),
        "smaller": reencode(original, 85, scale=0.8),
        "other": shot(55),  # same kind of scene (a tower against the sky), another view
    }


def test_the_hash_is_a_64_bit_unsigned_int_and_deterministic(photos: dict[str, bytes]) -> None:
    gray = decode_gray(photos["original"], 1000).pixels
    h = phash(gray)
    assert 0 <= h < 2**64
    assert h == phash(gray.copy())


def test_reencoding_and_resizing_flip_few_bits_and_another_view_many(
    photos: dict[str, bytes],
) -> None:
    hashes = {k: analyse_pixels(v, source="full").phash for k, v in photos.items()}
    assert hamming(hashes["original"], hashes["q70"]) <= 4
    assert hamming(hashes["original"], hashes["smaller"]) <= 4
    assert hamming(hashes["original"], hashes["other"]) > 10


def test_a_flat_image_sets_only_the_brightness_bit() -> None:
    assert phash(np.full((50, 80), 128, np.uint8)) == 1
