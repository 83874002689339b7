"""What a finished QC job holds in memory, measured on a generated site through the real app.

Generates a site (default 6,000 photos in 12 folders, small bodies, photo defects), serves it
with the in-process SFTP server, runs QC jobs of it through the web app's job manager (the same
runner "View QC" starts), and reports:

- per job, with tracemalloc: the bytes freed when the finished job is forgotten, split into
  what it holds (its event log, check report and scan result, or their packed forms) and the
  rest; and the seconds its result document takes to get (and to pack);
- for ``--jobs N`` finished jobs kept at once: the worker's RSS before and after.

    .venv/bin/python -m bench.job_memory                  # 6,000 photos, 1 traced job + 20 kept
    .venv/bin/python -m bench.job_memory --images 1375 --jobs 10
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from qc_tool import create_app
from qc_tool.demo.sftp_server import start_sftp_server
from qc_tool.demo.sites import SiteLayout, generate_site, make_body, with_defects
from qc_tool.services.jobs import Job, Packed
from qc_tool.web.deps import QCContext

SITE = "MEM-SITE"
USER, PASSWORD = "pilot", "memory-bench-password"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _layout(images: int) -> SiteLayout:
    folders = 12
    counts = [images // folders + (i < images % folders) for i in range(folders)]
    base = SiteLayout(
        folders=tuple((f"Folder-{i + 1:02d}", n) for i, n in enumerate(counts)),
        without_gps=images // 50,
    )
    return with_defects(base)


def _wait(job: Job, deadline_s: float = 1800) -> None:
    end = time.monotonic() + deadline_s
    while not job.ended():
        if time.monotonic() > end:
            raise TimeoutError(f"job {job.id} did not end in {deadline_s} s")
        job.events_after(10**9, timeout=1)


# What a finished job may hold: its objects, or (since they are packed) compressed JSON.
PARTS = ("_events", "report", "result", "structure", "_document", "_files", "_packed_events")


def _forget(ctx: QCContext, job: Job) -> None:
    """Take the job out of the manager (a bench may reach inside: nothing else should)."""
    ctx.jobs._jobs.pop(job.id)


def _traced(ctx: QCContext, sid: str) -> dict[str, Any]:
    """Run one job with tracemalloc on; what forgetting each part of it frees."""
    tracemalloc.start()
    job = ctx.jobs.start(sid, SITE, ctx.scan_runner(sid, SITE), checks=ctx.checks_enabled)
    _wait(job)
    if job.state != "done":
        raise RuntimeError(f"the traced job ended {job.state}: {job.error}")
    parts: dict[str, Any] = {"events": len(job.events_after(0, timeout=0))}
    _forget(ctx, job)
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0]
    for name in PARTS:
        value = getattr(job, name, None)
        if not value:  # not there, or already emptied by packing
            continue
        setattr(job, name, type(value)() if isinstance(value, list) else None)
        del value
        gc.collect()
        now = tracemalloc.get_traced_memory()[0]
        parts[f"{name.strip('_')}_bytes"], kept = kept - now, now
    del job
    gc.collect()
    parts["rest_bytes"] = kept - tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    parts["total_bytes"] = sum(v for k, v in parts.items() if k.endswith("_bytes"))
    return parts


def _timings(job: Job) -> dict[str, float]:
    """Seconds to get a finished job's document (what GET /api/jobs/<id> and each export do)."""
    started = time.perf_counter()
    document = job.document()
    got = time.perf_counter() - started
    started = time.perf_counter()
    Packed.of(document)
    return {"document": round(got, 3), "pack_document": round(time.perf_counter() - started, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6000)
    parser.add_argument("--jobs", type=int, default=20, help="finished jobs kept for the RSS part")
    parser.add_argument("--data", type=Path, help="where to generate the site (reused if there)")
    parser.add_argument("--cache", type=Path, help="the app's cache (reuse one: no first read)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="qc-jobmem-"))
    data = args.data or work / "data"
    sites = data / "sites"
    layout = _layout(args.images)
    if not (sites / SITE).is_dir():
        started = time.perf_counter()
        generate_site(sites, SITE, layout, body=make_body(layout))
        print(f"generated {layout.total} photos in {time.perf_counter() - started:.1f} s")
    server = start_sftp_server(data, {USER: PASSWORD}, sites_root="/sites")
    app = create_app(
        {
            "QC_SFTP_HOST": server.host,
            "QC_SFTP_PORT": server.port,
            "QC_SITES_ROOT": server.sites_root,
            "QC_KNOWN_HOSTS": server.write_known_hosts(work / "known_hosts"),
            "QC_CACHE_DIR": args.cache or work / "cache",
            "QC_SECRET_KEY": "bench",
            "QC_MAX_JOBS": 1,
            "QC_LOG_LEVEL": "WARNING",
        }
    )
    ctx = app.extensions["qc"]
    assert isinstance(ctx, QCContext)
    out: dict[str, Any] = {"images": layout.total}
    try:
        sid = ctx.sessions.create(USER, PASSWORD)
        first = ctx.jobs.start(sid, SITE, ctx.scan_runner(sid, SITE), checks=ctx.checks_enabled)
        started = time.perf_counter()
        _wait(first)  # reads and measures everything: the later jobs come from the cache
        out["first_job_s"] = round(time.perf_counter() - started, 1)
        _forget(ctx, first)
        del first
        out["traced"] = _traced(ctx, sid)
        print(json.dumps(out["traced"]))
        gc.collect()
        before = _rss_mb()
        kept = []
        for n in range(args.jobs):
            owner = ctx.sessions.create(USER, PASSWORD) if n % 2 else sid
            job = ctx.jobs.start(owner, SITE, ctx.scan_runner(owner, SITE))
            _wait(job)
            kept.append(job)
        gc.collect()
        out["rss_mb"] = {"before": round(before, 1), "after": round(_rss_mb(), 1)}
        out["kept_jobs"] = len(kept)
        out["seconds"] = _timings(kept[-1])
    finally:
        ctx.close()
        server.stop()
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
