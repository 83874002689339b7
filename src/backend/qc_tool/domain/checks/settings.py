"""Every threshold of the checks, with its default; docs/checks.md says how each was chosen."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# The settings the workers measure with; every other one only judges measures. Cached
# measures are keyed by these, so changing a threshold or the capture profile re-judges
# from the cache, and only changing one of these makes the photos be read again.
MEASURING = (
    "analysis_long_side",
    "blur_grid",
    "blur_texture_min_std",
    "blur_min_textured_cells",
    "blur_strongest_fraction",
    "dark_level",
    "bright_level",
)
MEASURES_VERSION = 3  # bump when measure.py or the pixel measures change what they compute


@dataclass(frozen=True, slots=True)
class CheckSettings:
    """Thresholds for the pixel, duplicate and position checks (all units in the field names)."""

    # Decoding: every photo is analysed at this long side, so scores do not depend on its size.
    analysis_long_side: int = 1000

    # Blur: edge sharpness per direction, over the textured cells of a grid (see blur.py).
    blur_grid: int = 12  # cells per side
    blur_texture_min_std: float = 10.0  # cell std dev (grey levels) below this is sky/wall/water
    blur_min_textured_cells: int = 6  # fewer than this: "not enough texture to judge"
    blur_strongest_fraction: float = 0.5  # the sharpest parts decide: top half by edge energy
    blur_min_focus: float = 80.0  # absolute floor of the focus score
    blur_site_ratio: float = 1.3  # relative rule: flagged below site median / this ...
    blur_site_mad_z: float = 3.5  # ... and this many robust standard deviations (log space)
    blur_site_min_images: int = 8  # the relative rule needs a site of at least this many scores

    # Exposure, on 8-bit luma (see exposure.py for why the histogram's ends matter most).
    dark_level: int = 5  # a pixel at or below this is crushed black
    bright_level: int = 250  # a pixel at or above this is clipped white
    under_highlight_max: int = 110  # under-exposed when the 99th percentile is below this
    under_dark_fraction: float = 0.5  # or when more than this share is crushed black
    over_bright_fraction: float = 0.10  # over-exposed when more than this share is clipped
    over_mean_min: float = 185.0  # or washed out: mean above this ...
    over_shadow_min: int = 100  # ... and the 1st percentile above this (no dark tones left)

    # Duplicates.
    near_duplicate_max_distance: int = 4  # pHash bits that may differ (of 64; always even)
    hover_max_distance_m: float = 1.0
    hover_max_seconds: float = 5.0

    # Position.
    outside_site_m: float = 500.0  # farther than this from the site's median position

    def measuring_key(self, whole_file: bool) -> str:
        """Identifies what a cached measure was measured with (see MEASURING)."""
        parts = [f"v{MEASURES_VERSION}", "full" if whole_file else "preview"]
        parts += [f"{name}={getattr(self, name)!r}" for name in MEASURING]
        return hashlib.sha256(";".join(parts).encode()).hexdigest()[:16]
