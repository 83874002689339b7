"""One decode, every pixel measure: focus, exposure and perceptual hash of a photo."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .blur import BlurMeasure, focus_measure
from .decode import decode_gray
from .exposure import ExposureMeasure, measure_exposure
from .phash import phash
from .result import Source
from .settings import CheckSettings


@dataclass(frozen=True, slots=True)
class PixelMeasures:
    """Plain, picklable numbers measured on the decoded pixels of one photo."""

    source: Source
    width: int  # of the decoded JPEG (the preview's size when source is "preview")
    height: int
    analysed_width: int
    analysed_height: int
    blur: BlurMeasure
    exposure: ExposureMeasure
    phash: int
    # Where exposure and the pHash were measured, when not on ``source``'s pixels: a band's
    # are measured on the EXIF thumbnail ("thumbnail") when it has one.
    frame_source: str = ""

    @property
    def phash_source(self) -> str:
        """What the pHash was computed from: only hashes of one source are compared."""
        return self.frame_source or self.source

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "width": self.width,
            "height": self.height,
            "analysed": [self.analysed_width, self.analysed_height],
            "focus": self.blur.score,
            "textured_cells": self.blur.textured_cells,
            "mean_luma": round(self.exposure.mean, 2),
            "dark_fraction": round(self.exposure.dark_fraction, 4),
            "bright_fraction": round(self.exposure.bright_fraction, 4),
            "phash": f"{self.phash:016x}",
            "phash_source": self.phash_source,
        }


def analyse_pixels(
    jpeg_bytes: bytes, *, source: Source, settings: CheckSettings | None = None
) -> PixelMeasures:
    """Decode once at reduced scale and measure focus, exposure and pHash together.

    Raises ImageDecodeError (see decode.py) when the bytes cannot be decoded.
    """
    s = settings or CheckSettings()
    gray = decode_gray(jpeg_bytes, s.analysis_long_side)
    pixels = gray.pixels
    return PixelMeasures(
        source=source,
        width=gray.width,
        height=gray.height,
        analysed_width=int(pixels.shape[1]),
        analysed_height=int(pixels.shape[0]),
        blur=focus_measure(pixels, s),
        exposure=measure_exposure(pixels, s),
        phash=phash(pixels),
    )
