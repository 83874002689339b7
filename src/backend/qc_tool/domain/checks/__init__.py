"""Photo validation checks: pure functions on bytes, numpy arrays and plain data.

Per photo (in a worker process): ``analyse_pixels`` (one reduced decode for focus, exposure and
pHash), ``measure_integrity``/``check_integrity`` on whole files, ``find_mpf_preview`` and
``parse_dji_xmp`` on headers. Per site: ``judge_site`` (or the pieces it combines:
``relative_blur_flags``, ``find_duplicates``, ``site_centre``). docs/checks.md has the details.
"""

from qc_tool.domain.mpf import find_mpf_preview

from .blur import BlurMeasure, blur_outcome, focus_measure, relative_blur_flags
from .decode import ImageDecodeError, ImageTooLarge, TruncatedImage, decode_gray
from .duplicates import (
    DuplicateCandidate,
    DuplicateReport,
    HoverMatch,
    NearMatch,
    find_duplicates,
)
from .exposure import ExposureMeasure, exposure_outcome, measure_exposure
from .geo import haversine_m, outside_site_flags, position_outcome, site_centre
from .integrity import IntegrityMeasure, check_integrity, has_eoi, measure_integrity
from .phash import hamming, phash
from .pixels import PixelMeasures, analyse_pixels
from .result import CheckOutcome, ImageChecks, Source
from .rules import CaptureFacts, CaptureProfile, ProfileError, check_rules, parse_dji_xmp
from .settings import CheckSettings
from .site import ImageEvidence, judge_site

__all__ = [
    "BlurMeasure",
    "CaptureFacts",
    "CaptureProfile",
    "CheckOutcome",
    "CheckSettings",
    "DuplicateCandidate",
    "DuplicateReport",
    "ExposureMeasure",
    "HoverMatch",
    "ImageChecks",
    "ImageDecodeError",
    "ImageEvidence",
    "ImageTooLarge",
    "IntegrityMeasure",
    "NearMatch",
    "PixelMeasures",
    "ProfileError",
    "Source",
    "TruncatedImage",
    "analyse_pixels",
    "blur_outcome",
    "check_integrity",
    "check_rules",
    "decode_gray",
    "exposure_outcome",
    "find_duplicates",
    "find_mpf_preview",
    "focus_measure",
    "hamming",
    "has_eoi",
    "haversine_m",
    "judge_site",
    "measure_exposure",
    "measure_integrity",
    "outside_site_flags",
    "parse_dji_xmp",
    "phash",
    "position_outcome",
    "relative_blur_flags",
    "site_centre",
]
