"""Helpers shared by the scan tests: generated sites with known truth, connectors to servers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from qc_tool.adapters.sftp.connect import SftpEndpoint
from qc_tool.adapters.sftp.connection import SftpConnector
from qc_tool.demo.sites import (
    SEED_LAYOUT,
    SEED_SITE,
    SOUTH_WEST_LAYOUT,
    SOUTH_WEST_SITE,
    SiteTruth,
    add_broken_files,
    generate_site,
    make_body,
)
from qc_tool.domain.models import ImageResult, ScanResult


def make_seed_sites(sites_root: Path) -> dict[str, SiteTruth]:
    """The seed-shaped site (12 folders, 1,375 images), a southern/western one, and broken files."""
    seed = generate_site(sites_root, SEED_SITE, SEED_LAYOUT, body=make_body(SEED_LAYOUT))
    body = make_body(SOUTH_WEST_LAYOUT)
    south = generate_site(sites_root, SOUTH_WEST_SITE, SOUTH_WEST_LAYOUT, body=body)
    south.images.extend(
        add_broken_files(sites_root, SOUTH_WEST_SITE, "Compound-Overview", 900, body)
    )
    # An upload cut off in the pixel data: the header (and GPS) is whole, the end is missing.
    whole = sites_root / SOUTH_WEST_SITE / south.images[0].path
    cut = whole.with_name("DJI_0950.JPG")
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    south.images.append(
        replace(
            south.images[0],
            path=f"{south.images[0].path.split('/')[0]}/{cut.name}",
            size=cut.stat().st_size,
            error="truncated",
        )
    )
    return {seed.site: seed, south.site: south}


def connector(
    host: str, port: int, known_hosts: Path, sites_root: str, user: str, password: str
) -> SftpConnector:
    return SftpConnector(
        SftpEndpoint(host, port, known_hosts, connect_timeout=10, op_timeout=30),
        sites_root,
        user,
        password,
    )


def mismatches(result: ScanResult, truth: SiteTruth) -> list[str]:
    """Every way the scan differs from the truth; empty when every image is exact."""
    expected = truth.by_path()
    got = {image.path: image for image in result.images}
    problems = [f"missing from scan: {p}" for p in sorted(set(expected) - set(got))]
    problems += [f"not in truth: {p}" for p in sorted(set(got) - set(expected))]
    for path in sorted(set(expected) & set(got)):
        problems += _compare(got[path], expected[path])
    return problems


def _compare(image: ImageResult, want: object) -> list[str]:
    from qc_tool.demo.sites import ImageTruth

    assert isinstance(want, ImageTruth)
    out = []
    if want.error is not None:
        if image.error is None:
            out.append(f"{image.path}: expected an error ({want.error}), got none")
        return out
    if image.error is not None:
        out.append(f"{image.path}: unexpected error {image.error!r}")
    for name in ("lat", "lon", "alt", "taken", "camera"):
        if getattr(image, name) != getattr(want, name):
            out.append(f"{image.path}: {name} {getattr(image, name)!r} != {getattr(want, name)!r}")
    return out
