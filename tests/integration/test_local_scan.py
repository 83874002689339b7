"""`qc-tool scan LOCAL_DIR`: the same read programs over a local copy of a site."""

from __future__ import annotations

from pathlib import Path

from qc_tool.adapters.local import LocalConnector
from qc_tool.cli import main
from qc_tool.demo.sites import SOUTH_WEST_SITE
from qc_tool.services.ports import NoCache
from qc_tool.services.scan.site_analysis_service import scan_site
from scan_support import make_seed_sites, mismatches


def test_a_local_copy_gives_the_same_exact_results(tmp_path: Path) -> None:
    truths = make_seed_sites(tmp_path)
    result = scan_site(LocalConnector(tmp_path), NoCache(), SOUTH_WEST_SITE)
    assert mismatches(result, truths[SOUTH_WEST_SITE]) == []


def test_the_cli_scans_a_local_folder_and_uses_its_cache(tmp_path: Path, capsys: object) -> None:
    make_seed_sites(tmp_path / "sites")
    site = str(tmp_path / "sites" / SOUTH_WEST_SITE)
    cache = str(tmp_path / "cache")
    # The seed site holds unreadable photos and photos without GPS: a re-fly (exit 1).
    assert main(["scan", site, "--cache-dir", cache]) == 1
    assert main(["scan", site, "--cache-dir", cache]) == 1
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "76 from cache" in out and "not a JPEG" in out
    assert main(["cache", "clear", "--cache-dir", cache]) == 0
