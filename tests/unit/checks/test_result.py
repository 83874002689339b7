"""Outcomes, summaries, JSON, and what a process pool needs: picklable values."""

from __future__ import annotations

import json
import pickle
from concurrent.futures import ProcessPoolExecutor

import pytest
from qc_tool.domain.checks.decode import ImageDecodeError, TruncatedImage
from qc_tool.domain.checks.integrity import check_integrity
from qc_tool.domain.checks.pixels import analyse_pixels
from qc_tool.domain.checks.result import CheckOutcome, ImageChecks
from qc_tool.domain.checks.settings import CheckSettings

from .scenes import shot


def test_a_photo_is_valid_only_when_no_outcome_failed() -> None:
    ok = CheckOutcome("blur", True, "Sharp")
    bad = CheckOutcome("exposure", False, "Under-exposed", 20.0, "under")
    skipped = CheckOutcome("blur", True, "Not enough texture", judged=False)
    assert ImageChecks.of("a.jpg", (ok, skipped), "preview", 0.1).valid
    checks = ImageChecks.of("b.jpg", (ok, bad), "full", 0.2)
    assert not checks.valid
    assert checks.failures == (bad,)


def test_the_summary_serialises_to_json() -> None:
    checks = ImageChecks.of(
        "a.jpg", (CheckOutcome("blur", False, "Blurred: focus 12.3", 12.3, 80.0),), "full", 0.12345
    )
    doc = json.loads(json.dumps(checks.to_json()))
    assert doc == {
        "name": "a.jpg",
        "valid": False,
        "source": "full",
        "seconds": 0.1235,
        "outcomes": [
            {
                "name": "blur",
                "ok": False,
                "message": "Blurred: focus 12.3",
                "value": 12.3,
                "threshold": 80.0,
                "judged": True,
            }
        ],
        "not_checked": None,
    }


def test_measures_outcomes_settings_and_errors_survive_pickling() -> None:
    data = shot(61, size=(640, 480))
    values = [
        analyse_pixels(data, source="preview"),
        check_integrity(data),
        CheckSettings(blur_min_focus=50.0),
        TruncatedImage("Image data is truncated"),
    ]
    for value in values:
        copy = pickle.loads(pickle.dumps(value))
        assert copy == value or (isinstance(value, Exception) and str(copy) == str(value))


def test_pixel_measures_report_to_json() -> None:
    doc = analyse_pixels(shot(61, size=(640, 480)), source="preview").to_json()
    assert doc["source"] == "preview" and doc["analysed"] == [640, 480]
    assert len(doc["phash"]) == 16 and json.dumps(doc)


def test_analysis_runs_in_a_process_pool() -> None:
    data = [shot(61, size=(640, 480)), b"junk"]
    with ProcessPoolExecutor(max_workers=1) as pool:
        good = pool.submit(analyse_pixels, data[0], source="full").result()
        with pytest.raises(ImageDecodeError):
            pool.submit(analyse_pixels, data[1], source="full").result()
    assert good == analyse_pixels(data[0], source="full")
