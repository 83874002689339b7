"""The benchmark's data: the seed-shaped site generated once, its truth, and a hard-linked sample.

Full size is 1,375 files of ~6.7 MB (about 9 GB), so it is generated once into the data
directory and reused while its manifest matches and every file still has the size and mtime
the truth records. The site carries photo defects (demo/defects.py) at known places, a few
percent of each kind, for the check pass's accuracy rows; its GPS truth accounts for them. The sample site (``<site>-sample``) holds hard links to N images per folder:
no extra disk, same size and mtime, so results for it compare one to one with the whole site.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from qc_tool.demo.sites import (
    FULL_BODY,
    SEED_LAYOUT,
    SEED_SITE,
    SiteLayout,
    SiteTruth,
    generate_site,
    make_body,
    with_defects,
)

MANIFEST_FORMAT = 2  # 2: photo defects, previews per photo, shots 5 m apart
SEED = 0
WARM_HEAD = 256 * 1024  # bytes of every file pulled into the page cache before measuring
WARM_TAIL = 4096
WARM_PREVIEW = 1 << 20  # the check pass: previews sit at the end of each file (~0.3 MB)


@dataclass(frozen=True)
class Dataset:
    """A generated site on local disk, as the server will serve it."""

    sites_root: Path  # holds <site>/ and <site>-sample/
    site: str
    sample_site: str
    truth: SiteTruth
    sample: dict[str, list[str]]  # folder -> "<folder>/<file>" paths in the sample
    label: str  # "full" or "small"
    generated_s: float | None  # None when an earlier generation was reused
    disk_bytes: int

    @property
    def sample_count(self) -> int:
        return sum(len(paths) for paths in self.sample.values())


SMALL_BODY = (640, 480)
SMALL_PREVIEW = (480, 360)


def layout_for(small: bool, no_preview_share: float = 0.0) -> SiteLayout:
    """Full-size bodies (4000x3000, 960x720 MPF previews) or small ones, with defects.

    Each photo has its own preview (the pixels the check pass reads); the full-size body is
    shared, as before, so generating the 9 GB takes minutes, not hours. With
    ``no_preview_share``, that share of the photos has no preview but its own body and EXIF
    thumbnail (a tenth of them no thumbnail either): each costs a full-size render (~3.5 s).
    """
    if small:
        layout = replace(
            SEED_LAYOUT, body_size=SMALL_BODY, previews=True, preview_size=SMALL_PREVIEW
        )
    else:
        layout = replace(SEED_LAYOUT, body_size=FULL_BODY, previews=True)
    return replace(with_defects(layout), no_preview_share=no_preview_share)


def data_label(small: bool, no_preview_share: float = 0.0) -> str:
    """The data directory's name: each kind of site is generated into its own."""
    label = "small" if small else "full"
    return f"{label}-nopreview{round(no_preview_share * 100)}" if no_preview_share else label


def _manifest(layout: SiteLayout) -> dict[str, Any]:
    data = asdict(layout)
    data["start"] = layout.start.isoformat()
    manifest = {"format": MANIFEST_FORMAT, "site": SEED_SITE, "seed": SEED, "layout": data}
    # Through JSON and back, so tuples compare equal to the lists read from the file.
    loaded: dict[str, Any] = json.loads(json.dumps(manifest))
    return loaded


def _intact(root: Path, truth: SiteTruth) -> bool:
    """Every file the truth lists is there with its size and mtime (a stat each: ~0.1 s)."""
    for image in truth.images:
        try:
            st = (root / truth.site / image.path).stat()
        except OSError:
            return False
        if st.st_size != image.size or int(st.st_mtime) != image.mtime:
            return False
    return True


@contextmanager
def _world_readable() -> Iterator[None]:
    """Files 0644, folders 0755: sshd serves them as the unprivileged test user."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def ensure_dataset(
    data_dir: Path, *, small: bool, per_folder: int, no_preview_share: float = 0.0
) -> Dataset:
    """Reuse or generate the site under ``data_dir/(full|small)[-nopreviewNN]``; (re)link the
    sample."""
    label = data_label(small, no_preview_share)
    root = (data_dir / label).resolve()
    layout = layout_for(small, no_preview_share)
    manifest_path, truth_path = root / "manifest.json", root / "truth.json"
    wanted = _manifest(layout)
    truth: SiteTruth | None = None
    fresh = manifest_path.is_file() and truth_path.is_file()
    if fresh and json.loads(manifest_path.read_text()) == wanted:
        truth = SiteTruth.read_truth(truth_path)
        if not _intact(root, truth):
            truth = None
    generated_s: float | None = None
    with _world_readable():
        if truth is None:
            manifest_path.unlink(missing_ok=True)  # written last: marks a finished generation
            shutil.rmtree(root / SEED_SITE, ignore_errors=True)
            root.mkdir(parents=True, exist_ok=True)
            print(
                f"Generating the {label}-size seed site into {root} (first run only)...", flush=True
            )
            started = time.perf_counter()
            truth = generate_site(
                root, SEED_SITE, layout, body=make_body(layout, seed=SEED), seed=SEED
            )
            truth.write_truth(truth_path)
            manifest_path.write_text(json.dumps(wanted, indent=1))
            generated_s = time.perf_counter() - started
        sample_site = f"{SEED_SITE}-sample"
        sample = pick_sample(truth, per_folder)
        _link_sample(root, truth.site, sample_site, sample)
    return Dataset(
        sites_root=root,
        site=truth.site,
        sample_site=sample_site,
        truth=truth,
        sample=sample,
        label=label,
        generated_s=generated_s,
        disk_bytes=_disk_bytes(root / truth.site),
    )


def pick_sample(truth: SiteTruth, per_folder: int) -> dict[str, list[str]]:
    """``per_folder`` images of every folder, evenly spaced (all of a smaller folder)."""
    folders: dict[str, list[str]] = {}
    for image in truth.images:
        folders.setdefault(image.path.split("/", 1)[0], []).append(image.path)
    sample: dict[str, list[str]] = {}
    for folder, paths in folders.items():
        k = min(per_folder, len(paths))
        sample[folder] = [paths[i * len(paths) // k] for i in range(k)] if k else []
    return sample


def _link_sample(root: Path, site: str, sample_site: str, sample: dict[str, list[str]]) -> None:
    target = root / sample_site
    shutil.rmtree(target, ignore_errors=True)
    for paths in sample.values():
        for rel in paths:
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            os.link(root / site / rel, target / rel)  # same inode: same size and mtime


def _disk_bytes(path: Path) -> int:
    """Allocated bytes under ``path``, as du counts them."""
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def warm_page_cache(data: Dataset, checks: bool = False) -> float:
    """Read what the scans will read, so the server's disk is not what gets measured.

    Sample files whole (the old approach pulls them whole), and the head and tail of every
    file (the tool's header reads). With ``checks``, also each file's last MiB (its preview)
    and every truncated file whole (the check pass reads those whole). Returns the seconds.
    """
    started = time.perf_counter()
    sampled = {p for paths in data.sample.values() for p in paths}
    tail = WARM_PREVIEW if checks else WARM_TAIL
    for image in data.truth.images:
        path = data.sites_root / data.site / image.path
        with path.open("rb") as f:
            if image.path in sampled or (checks and image.error is not None):
                while f.read(1 << 20):
                    pass
                continue
            f.read(WARM_HEAD)
            f.seek(max(0, image.size - tail))
            f.read()
    return time.perf_counter() - started
