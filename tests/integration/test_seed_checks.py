"""The check pass on a reduced seed-shaped site with generated defects, over SFTP.

12 folders of 10 photos with 480x360 previews; 3 % of the photos per defect kind (4 each),
placed and labelled by the generator (demo/defects.py). scan_site and check_site run against
the in-process SFTP server and the verdicts are scored against the truth: the issue's bar is
precision and recall of 0.95 per kind and at most 2 % of clean photos flagged. The site is
checked twice: every photo with a preview, and 30 % without one (read as a band of top rows,
the EXIF thumbnail and the tail: domain/pixel_reader.py), as the issue 14 benchmark site.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

import pytest
from qc_tool.demo.defects import DEFECT_KINDS, DefectScores, score_defects
from qc_tool.demo.sftp_server import start_sftp_server
from qc_tool.demo.sites import (
    SEED_LAYOUT,
    SEED_SITE,
    SiteTruth,
    generate_site,
    make_body,
    with_defects,
)
from qc_tool.domain.models import ScanResult
from qc_tool.services.checks.run import CheckProgress, CheckReport, check_site
from qc_tool.services.ports import NoCache
from qc_tool.services.scan.site_analysis_service import scan_site
from scan_support import connector

USER, PASSWORD = "tech", "pw-seed-checks"
LAYOUT = with_defects(
    replace(
        SEED_LAYOUT,
        folders=tuple((name, 10) for name, _ in SEED_LAYOUT.folders),
        without_gps=4,
        body_size=(640, 480),
        previews=True,
        preview_size=(480, 360),
    ),
    rate=0.03,
)


@dataclass(frozen=True)
class Checked:
    truth: SiteTruth
    scan: ScanResult
    report: CheckReport
    scores: DefectScores


@pytest.fixture(scope="module", params=[0.0, 0.3], ids=["previews", "30pc-without"])
def checked(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Checked:
    root = tmp_path_factory.mktemp("seed-checks")
    layout = replace(LAYOUT, no_preview_share=request.param)
    truth = generate_site(root / "sites", SEED_SITE, layout, body=make_body(layout))
    with start_sftp_server(root, {USER: PASSWORD}, sites_root="/sites") as server:
        known_hosts = server.write_known_hosts(root.parent / "known_hosts")
        conn = connector(server.host, server.port, known_hosts, "/sites", USER, PASSWORD)
        scan = scan_site(conn, NoCache(), SEED_SITE)
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(2, mp_context=context) as pool:
            progress: list[CheckProgress] = []
            report = check_site(conn, scan, pool, workers=2, on_progress=progress.append)
    # Every photo counts towards the progress, the truncated ones judged from the scan too.
    assert max(p.done for p in progress) == progress[-1].total == len(scan.images)
    scores = score_defects({i.path: i.defects for i in truth.images}, report.images)
    return Checked(truth, scan, report, scores)


def test_the_site_has_every_defect_kind_at_known_places(checked: Checked) -> None:
    truth = checked.truth
    assert len(truth.images) == 120 and sum(i.lat is not None for i in truth.images) == 116
    for kind in DEFECT_KINDS:
        pair = kind in ("identical", "near_duplicate", "hovering")
        assert len(truth.with_defect(kind)) == (8 if pair else 4), kind
    assert len(checked.report.images) == 120  # truncated uploads are checked too
    assert 60 <= checked.scores.clean <= 80


@pytest.mark.parametrize("kind", DEFECT_KINDS)
def test_each_defect_kind_is_found_with_precision_and_recall_of_at_least_95_percent(
    checked: Checked, kind: str
) -> None:
    score = next(s for s in checked.scores.kinds if s.kind == kind)
    assert score.true_pos + score.false_neg > 0
    assert score.precision >= 0.95, score
    assert score.recall >= 0.95, score


def test_at_most_two_percent_of_clean_photos_are_flagged(checked: Checked) -> None:
    flagged = checked.scores.clean_flagged
    messages = {
        c.name: [o.message for o in c.failures] for c in checked.report.images if c.name in flagged
    }
    assert checked.scores.clean_flagged_share <= 0.02, messages


def test_previews_are_read_and_whole_files_only_for_truncated_uploads(checked: Checked) -> None:
    truncated = checked.truth.with_defect("truncated")
    sources = {c.name: c.source for c in checked.report.images}
    without = {i.path for i in checked.truth.images if not i.preview}
    full = {n for n, s in sources.items() if s == "full"}
    band = {n for n, s in sources.items() if s == "band"}
    # Whole files: cut uploads, and photos without a preview whose band looked soft (they are
    # confirmed on the whole frame); every other photo without a preview is a band.
    assert full <= truncated | without
    assert band == (without - truncated) - full
    assert len(band) >= len(without - truncated) // 2
    stats = checked.report.stats
    assert stats.preview_images >= 120 - len(truncated) - len(without)
    assert stats.full_images == len(full)
    assert stats.band_images == len(band)


def test_photos_without_a_preview_cost_a_fifth_of_their_bytes_or_less(checked: Checked) -> None:
    stats = checked.report.stats
    if not stats.band_images:
        pytest.skip("every photo of this site has a preview")
    # 640x480 bodies: the header (EXIF with a MakerNote, ICC) is ~10 % of such a small file.
    assert stats.band_bytes_read <= 0.25 * stats.band_file_bytes
