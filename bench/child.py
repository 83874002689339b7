"""One measurement in a fresh process: ``python -m bench.child`` reads a job (JSON) on stdin.

A fresh interpreter per scan makes its peak RSS the scan's own (plus the interpreter and the
imports that scan needs, reported separately as the baseline). The result is one JSON line
on stdout. The password travels on stdin, never on the command line.
"""

from __future__ import annotations

import contextlib
import functools
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any


def _peak_mb(pid: int | str = "self") -> float:
    """A process's peak RSS (VmHWM), in MiB; this process's by default.

    Not ru_maxrss: Linux carries it over from the parent across fork+exec, so a child of a
    bigger parent would report the parent's size. VmHWM belongs to the process's own memory
    map, which exec creates afresh.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: best effort


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _connector(job: dict[str, Any]) -> Any:
    from qc_tool.adapters.sftp.connect import SftpEndpoint
    from qc_tool.adapters.sftp.connection import SftpConnector

    endpoint = SftpEndpoint(
        job["host"], job["port"], Path(job["known_hosts"]), connect_timeout=30, op_timeout=60
    )
    # framed=False: paramiko's own per-request sending instead of the wire's (--no-framing).
    return SftpConnector(
        endpoint,
        job["sites_root"],
        job["username"],
        job["password"],
        framed=job.get("framed", True),
    )


class _Counted:
    """A connector that counts its logins (the kept-connection rescan should make none)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.count = 0

    @property
    def server_id(self) -> str:
        return str(self._inner.server_id)

    def connect(self) -> Any:
        self.count += 1
        return self._inner.connect()


def run_old(job: dict[str, Any]) -> dict[str, Any]:
    """The field tool's way (bench/old_approach.py) on the sample folders."""
    from bench.old_approach import scan_old

    result = scan_old(
        job["host"],
        job["port"],
        job["username"],
        job["password"],
        Path(job["known_hosts"]),
        job["folders"],
        connections=job["connections"],
    )
    return asdict(result)


def run_tool(job: dict[str, Any]) -> dict[str, Any]:
    """One scan_site call, with its collaborators wrapped to time each phase."""
    from qc_tool.adapters.cache import SqliteCache
    from qc_tool.services.ports import NoCache, ResultCache
    from qc_tool.services.scan.parsing import ProcessParser, default_workers
    from qc_tool.services.scan.site_analysis_service import ScanOptions, scan_site

    from bench import packets
    from bench.timeline import TimedCache, TimedConnector, Timeline

    inner: ResultCache = (
        SqliteCache(Path(job["cache_dir"])).for_user(job["username"])
        if job["cache_dir"]
        else NoCache()
    )
    # The parsing processes start before the clock, as in the web app, which keeps them warm
    # (the CLI starts them at launch, ~0.2 s). Their CPU is not in this process's cpu_s.
    workers = job.get("parse_workers", default_workers())
    parser = ProcessParser(workers) if workers else None
    connector = _connector(job)
    logins = _Counted(connector)
    held = None
    if job.get("kept"):
        # The web app's rescan: the login already has a kept connection (its last QC or a
        # preview left it), opened before the clock; the job borrows it (held.lend).
        from qc_tool.services.logins.held_connections import HeldConnections

        held = HeldConnections()
        held.run("bench", connector, lambda conn: None)
        connector = held.lend("bench", logins)
    timeline = Timeline()
    counting = packets.counting() if job.get("count_packets") else contextlib.nullcontext()
    try:
        with counting as counts:
            result = scan_site(
                TimedConnector(connector, timeline),
                TimedCache(inner, timeline),
                job["site"],
                options=ScanOptions(
                    max_connections=job["max_connections"], pipelined=job["pipelined"]
                ),
                parser=parser,
            )
            wall = timeline.now()
    finally:
        if parser is not None:
            parser.close()
        if held is not None:
            held.close_all()
    return {
        "logins": logins.count if held is not None else None,  # SSH logins inside the clock
        "packets": counts.as_dict() if counts is not None else None,
        "stats": result.stats.to_json(),
        "wall_s": wall,
        "gps_points": result.gps_points,
        "images": [{**i.to_json(), "bytes_read": i.bytes_read} for i in result.images],
        "events": timeline.events,
        "facts": timeline.facts,
    }


def run_checks(job: dict[str, Any]) -> dict[str, Any]:
    """One check pass (check_site) over the link, after a GPS scan of the same files.

    The scan that the check pass follows is taken from the local disk (LocalConnector: the same
    files, the same results, as the scan rows check), so everything the server, the link and
    this process spend during the child is the check pass's. The measuring processes are
    started and warmed before the clock, as the web app keeps its pool; the CLI starts its
    pool for each run.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from qc_tool.adapters.local import LocalConnector
    from qc_tool.heap import keep_freed_memory
    from qc_tool.services.checks.options import CheckOptions
    from qc_tool.services.checks.run import check_site
    from qc_tool.services.ports import NoCache
    from qc_tool.services.scan.site_analysis_service import scan_site

    from bench.timeline import TimedConnector, Timeline

    scan = scan_site(LocalConnector(Path(job["root"])), NoCache(), job["site"])
    workers = job["workers"]
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("forkserver"),
        initializer=keep_freed_memory,  # as the app's measuring pool (services/workers.py)
    )
    try:
        for warm in [pool.submit(warm_worker) for _ in range(workers)]:
            warm.result(timeout=120)
        pids = sorted(pool._processes)  # bench-only peek: the workers' own CPU and memory
        worker_cpu = sum(_proc_cpu_s(pid) for pid in pids)
        timeline = Timeline()
        cpu = _cpu_s()
        report = check_site(
            TimedConnector(_connector(job), timeline),
            scan,
            pool,
            options=CheckOptions(max_connections=job["max_connections"]),
            workers=workers,
        )
        wall = timeline.now()
        cpu = _cpu_s() - cpu
        worker_cpu = sum(_proc_cpu_s(pid) for pid in pids) - worker_cpu
        worker_peaks = [_peak_mb(pid) for pid in pids]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return {
        "wall_s": wall,
        "client_cpu_s": cpu,
        "workers": workers,
        "worker_pids": len(pids),
        "workers_cpu_s": worker_cpu,
        "worker_peak_mb": worker_peaks,
        "stats": report.stats.to_json(),
        "images": [
            {
                "name": c.name,
                "valid": c.valid,
                "source": c.source,
                "failures": [o.to_json() for o in c.failures],
            }
            for c in report.images
        ],
        "pixels": timeline.pixels,
        "events": timeline.events,
        "facts": timeline.facts,
    }


def warm_worker() -> bool:
    """Run in each measuring process before the clock: the imports a first photo would pay."""
    import qc_tool.services.checks.measure  # noqa: F401

    return True


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of another process, from /proc/<pid>/stat."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_threshold(job: dict[str, Any]) -> dict[str, Any]:
    """Read the first n images of one folder on k already-open connections, each way round.

    Connections are opened first (each login timed) and reused, so the figures are read
    times only: what a folder costs once the pool exists.
    """
    connector = _connector(job)
    conns, logins = [], []
    width = max([k for k, _ in job["variants"]] + job["site_widths"])
    for _ in range(width):
        start = time.perf_counter()
        conns.append(connector.connect())
        logins.append(time.perf_counter() - start)
    try:
        listing = conns[0].list_images(job["site"], [job["folder"]])[job["folder"]].photos
        rtt = _round_trips(conns[0], job["sites_root"], job["site"], job["folder"])
        conns[0].release()
        folders = conns[0].list_folders(job["site"])
        site_files = [
            f for found in conns[0].list_images(job["site"], folders).values() for f in found.photos
        ]
        conns[0].release()
        rows = [
            _timed(conns[:k], job["site"], listing[:n], pipelined, job["repeats"])
            for n in job["sizes"]
            for k, pipelined in job["variants"]
        ]
        # The whole site on connections that are already open: the reading phase alone,
        # as it would be if the pool were ready when the listing ends.
        site_rows = [
            _timed(conns[:k], job["site"], site_files, True, job["repeats"])
            for k in job["site_widths"]
        ]
    finally:
        for conn in conns:
            conn.close()
    return {"logins_s": logins, "rtt_s": rtt, "rows": rows, "site_rows": site_rows}


def _timed(
    conns: list[Any], site: str, files: list[Any], pipelined: bool, repeats: int
) -> dict[str, Any]:
    times, errors = [], 0
    for _ in range(repeats):
        seconds, bad = _read_split(conns, site, files, pipelined)
        times.append(seconds)
        errors += bad
    return {
        "n": len(files),
        "k": len(conns),
        "pipelined": pipelined,
        "seconds": times,
        "median_s": statistics.median(times),
        "errors": errors,
    }


def _round_trips(conn: Any, sites_root: str, site: str, folder: str, count: int = 7) -> float:
    """Median of `count` SFTP stat calls: one request, one reply, one round trip each."""
    sftp = getattr(conn, "_sftp", None)  # bench-only: the tool has no single-request call
    if sftp is None:
        return float("nan")  # the adapter changed shape: report the round trip as unknown
    path = f"{sites_root.rstrip('/')}/{site}/{folder}"
    times = []
    for _ in range(count):
        start = time.perf_counter()
        sftp.stat(path)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _read_split(
    conns: list[Any], site: str, files: list[Any], pipelined: bool
) -> tuple[float, int]:
    """Deal ``files`` round-robin over ``conns`` (one thread each, as the tool does); time it."""
    errors = [0]
    done = [0]

    def on_result(f: Any, block: Any, error: str | None) -> None:
        done[0] += 1
        errors[0] += error is not None or block is None

    def work(index: int) -> None:
        conn = conns[index]
        try:
            conn.read_headers(site, files[index :: len(conns)], on_result, pipelined=pipelined)
        finally:
            conn.release()

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(conns)) as pool:
        for future in [pool.submit(work, i) for i in range(len(conns))]:
            future.result()
    seconds = time.perf_counter() - start
    return seconds, errors[0] + (len(files) - done[0])


def run_local(job: dict[str, Any]) -> dict[str, Any]:
    """The same scan_site on the local disk (LocalConnector): the client's CPU floor, no SSH."""
    from qc_tool.adapters.local import LocalConnector
    from qc_tool.services.ports import NoCache
    from qc_tool.services.scan.site_analysis_service import ScanOptions, scan_site

    start = time.perf_counter()
    result = scan_site(
        LocalConnector(Path(job["root"])),
        NoCache(),
        job["site"],
        options=ScanOptions(max_connections=job["max_connections"]),
    )
    wall = time.perf_counter() - start
    return {
        "wall_s": wall,
        "images": len(result.images),
        "gps_points": result.gps_points,
        **_parse_costs(Path(job["root"]) / job["site"], [i.path for i in result.images]),
    }


def _parse_costs(site_dir: Path, paths: list[str]) -> dict[str, float]:
    """CPU seconds of the two halves of reading a header, on local files, one after the other.

    walk: the read program (segment and IFD walk, which decides what to fetch); summarize:
    turning the fetched block into GPS, time and camera (the reader's callback in a scan).
    """
    import os

    from qc_tool.domain.exif import summarize
    from qc_tool.domain.exif_reader import read_exif_block
    from qc_tool.domain.sparse import run_program
    from qc_tool.errors import QCError

    start = _cpu_s()
    blocks = []
    for rel in paths:
        fd = os.open(site_dir / rel, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            blocks.append(run_program(read_exif_block(size), functools.partial(_pread, fd)))
        except QCError:
            continue
        finally:
            os.close(fd)
    walked = _cpu_s()
    for block in blocks:
        try:
            summarize(block)
        except QCError:
            continue
    done = _cpu_s()
    return {
        "walk_cpu_s": walked - start,
        "summarize_cpu_s": done - walked,
        "parsed": float(len(blocks)),
    }


def _pread(fd: int, offset: int, length: int) -> bytes:
    import os

    return os.pread(fd, length, offset)


JOBS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "old": run_old,
    "tool": run_tool,
    "threshold": run_threshold,
    "local": run_local,
    "checks": run_checks,
}


def main() -> None:
    from qc_tool.heap import share_heaps

    share_heaps()  # as the CLI and the web app's workers do (qc_tool/heap.py)
    job = json.loads(sys.stdin.read())
    run = JOBS[job["kind"]]
    # Import what the job uses before taking the baseline, so "baseline" is interpreter + libs.
    if job["kind"] == "old":
        import bench.old_approach
    else:
        import qc_tool.adapters.cache
        import qc_tool.adapters.local
        import qc_tool.adapters.sftp.connection
        import qc_tool.services.scan.site_analysis_service

        import bench.packets
        import bench.timeline  # noqa: F401
    if job["kind"] == "checks":  # numpy and Pillow: only the check pass's baseline has them
        import qc_tool.services.checks.run  # noqa: F401
    baseline = _peak_mb()
    cpu0, wall0 = _cpu_s(), time.perf_counter()
    result = run(job)
    out = {
        "result": result,
        "child_wall_s": time.perf_counter() - wall0,
        "child_cpu_s": _cpu_s() - cpu0,
        "baseline_mb": baseline,
        "peak_mb": _peak_mb(),
    }
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
