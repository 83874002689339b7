"""The whole QC as a user runs it: ``qc-tool scan`` from the shell, through the emulated link.

``python -m bench.run --cli`` runs, per profile: a cold ``qc-tool scan --checks`` (the GPS pass
and every photo check, on an empty cache: what "View QC" costs) and then warm ``qc-tool scan``
runs of the unchanged site (what a second look costs). Each is a fresh process started the way
a shell starts it, so the wall time includes the interpreter's start-up and the imports.
Memory is the peak of the whole process tree (the CLI and its parsing and measuring
processes), sampled with psutil every 20 ms, two ways: the sum of RSS, which counts the
pages the processes share (Python, numpy, Pillow, libjpeg, mapped once by the machine) once
per process, an upper bound; and the sum of PSS (each shared page split between the processes
mapping it), what the machine actually gave the QC. The goal is judged on PSS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

# Reading every process's smaps_rollup is CPU the measured run's governor sees as another
# job's: every 20 ms it made the LAN check pass drop to one measuring process within 1.5 s in
# each of 4 runs; every 0.1 s the peak is the same within the runs' spread (236-256 MB).
SAMPLE_S = 0.1
DECISIONS = {0: "pass", 1: "refly", 3: "incomplete"}  # qc-tool's exit codes
TIMEOUT_S = 1800


def run_cli(
    login: dict[str, Any], site: str, cache_dir: Path, *, checks: bool, json_out: Path | None
) -> dict[str, Any]:
    """One ``qc-tool scan`` in a fresh process; its wall time, tree peak RSS and document.

    Without ``json_out`` the run prints its table only, as a user's second look would (writing
    the indented JSON of 1,375 photos costs ~0.1 s of pure-Python encoding); its image count
    and decision are then read from the table's last lines.
    """
    url = f"sftp://{login['username']}@{login['host']}:{login['port']}{login['sites_root']}/{site}"
    argv = [
        str(Path(sys.executable).with_name("qc-tool")),
        "scan",
        url,
        "--known-hosts",
        login["known_hosts"],
        "--cache-dir",
        str(cache_dir),
        *(["--json", str(json_out)] if json_out else []),
        *(["--checks"] if checks else []),
    ]
    env = {**os.environ, "QC_SFTP_PASSWORD": login["password"]}
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    peak = _TreePeak(proc.pid)
    peak.start()
    try:
        printed, err = proc.communicate(timeout=TIMEOUT_S)
    finally:
        wall = time.perf_counter() - started
        peak.stop()
    if proc.returncode not in (0, 1, 3):  # pass, re-fly, incomplete: a decision was reached
        raise RuntimeError(f"qc-tool scan exited {proc.returncode}:\n{err.decode()[-3000:]}")
    record = {
        "wall_s": wall,
        "exit": proc.returncode,
        "peak_tree_mb": peak.peak_mb,
        "peak_tree_pss_mb": peak.peak_pss_mb,
        "peak_processes": peak.most_processes,
        "peak_pss_by_role_mb": {k: round(v, 1) for k, v in peak.by_role.items()},
        "pss_at_peak_mb": peak.at_peak,
    }
    if json_out is None:
        total = next(ln for ln in printed.decode().splitlines() if ln.startswith("total "))
        return {**record, "images": int(total.split()[1]), "decision": DECISIONS[proc.returncode]}
    document = json.loads(json_out.read_text())
    return {
        **record,
        "stats": document["stats"],
        "check_stats": document.get("check_stats"),
        "images": len(document["images"]),
        "decision": document["verdict"]["decision"],
    }


class _TreePeak(threading.Thread):
    """Samples the summed RSS and PSS of a process and its descendants until stopped.

    Also where the memory is: each role's highest PSS (``by_role``, MB), and the roles' PSS
    in the sample where the tree peaked (``at_peak``).
    """

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self._root = psutil.Process(pid)
        self._done = threading.Event()
        self.peak_mb = 0.0  # summed RSS
        self.peak_pss_mb = 0.0  # summed PSS
        self.most_processes = 0
        self.by_role: dict[str, float] = {}
        self.at_peak: dict[str, float] = {}

    def run(self) -> None:
        while not self._done.is_set():
            try:
                procs = [self._root, *self._root.children(recursive=True)]
            except psutil.Error:
                return
            rss = pss = 0
            roles: dict[str, float] = {}
            for p in procs:
                try:
                    full = p.memory_full_info()  # Linux: /proc/PID/smaps_rollup
                    role = _role(p, self._root)
                except psutil.Error:
                    continue
                rss, pss = rss + full.rss, pss + full.pss
                roles[role] = roles.get(role, 0.0) + full.pss / 2**20
                self.by_role[role] = max(self.by_role.get(role, 0.0), full.pss / 2**20)
            if pss / 2**20 > self.peak_pss_mb:
                self.at_peak = {k: round(v, 1) for k, v in roles.items()}
            self.peak_mb = max(self.peak_mb, rss / 2**20)
            self.peak_pss_mb = max(self.peak_pss_mb, pss / 2**20)
            self.most_processes = max(self.most_processes, len(procs))
            self._done.wait(SAMPLE_S)

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=5)


def _role(proc: psutil.Process, root: psutil.Process) -> str:
    """What a process of the tree is: the CLI, the forkserver, its tracker, or a worker (the
    forkserver's children, measuring or parsing: told apart by when they live)."""
    if proc.pid == root.pid:
        return "cli"
    if proc.ppid() != root.pid:
        return f"worker {proc.pid}"
    line = " ".join(proc.cmdline())
    return "resource_tracker" if "resource_tracker" in line else "forkserver"
