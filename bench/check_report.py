"""The check pass's rows: speed, CPU, memory, bytes and link use, and accuracy against the truth.

Like bench/report.py this only turns records into lines and verdicts; nothing here measures.
Each record is one ``python -m bench.child`` run of the ``checks`` job (bench/child.py).
"""

from __future__ import annotations

import statistics
from typing import Any

from qc_tool.demo.defects import DefectScores, score_defects
from qc_tool.demo.sites import SiteTruth
from qc_tool.domain.checks.result import CheckOutcome, ImageChecks

from bench.report import MB, verdict

# The goals for the check pass (never tuned here: a miss is reported as a miss).
LAN_MIN_IMAGES_PER_S = 60.0  # issue 14 (issue 4 asked 40)
WAN_MIN_LINK_SHARE = 0.9  # link time for the bytes read / measured wall time
PREVIEW_MAX_SHARE = 0.25  # bytes read / file size, for images read through their preview
BAND_MAX_SHARE = 0.20  # issue 14: on average, for images without a preview (read as a band)
MIN_PRECISION = MIN_RECALL = 0.95
MAX_CLEAN_FLAGGED = 0.02


def median_check_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda m: m["result"]["wall_s"])
    return ordered[(len(ordered) - 1) // 2]


def image_checks(run: dict[str, Any]) -> list[ImageChecks]:
    """The pass's per-image results back as ImageChecks (failures only: enough to score)."""
    return [
        ImageChecks.of(i["name"], tuple(CheckOutcome(**o) for o in i["failures"]), i["source"], 0.0)
        for i in run["result"]["images"]
    ]


def scores(run: dict[str, Any], truth: SiteTruth) -> DefectScores:
    return score_defects({i.path: i.defects for i in truth.images}, image_checks(run))


def _verdict_set(run: dict[str, Any]) -> list[tuple[str, bool, tuple[str, ...]]]:
    """What a run decided per image, to compare runs: a deterministic pass decides the same."""
    return sorted(
        (i["name"], i["valid"], tuple(sorted(o["name"] for o in i["failures"])))
        for i in run["result"]["images"]
    )


def preview_shares(run: dict[str, Any]) -> tuple[int, int, float, float]:
    """(images read by preview, read whole, mean and max of bytes read / file size by preview)."""
    pixels = run["result"]["pixels"]
    shares = [p["bytes"] / p["size"] for p in pixels if p["source"] == "preview"]
    whole = sum(1 for p in pixels if p["source"] == "full")
    if not shares:
        return 0, whole, 0.0, 0.0
    return len(shares), whole, statistics.fmean(shares), max(shares)


def band_shares(run: dict[str, Any]) -> tuple[int, float, float]:
    """(images read as a band, bytes read / file size over them all, the largest share)."""
    pixels = [p for p in run["result"]["pixels"] if p["source"] == "band"]
    if not pixels:
        return 0, 0.0, 0.0
    share = sum(p["bytes"] for p in pixels) / sum(p["size"] for p in pixels)
    return len(pixels), share, max(p["bytes"] / p["size"] for p in pixels)


def link_time(run: dict[str, Any], shape: Any) -> tuple[float, float, float]:
    """(seconds the link needs, of which transfer, of which round trips) for a run's traffic.

    Transfer: the bytes the emulator carried down (SSH framing and every login included) at the
    link's rate. Round trips: the first login, measured on this link (its ~10 round trips are
    the protocol's: TCP, SSH key exchange, password, channel, SFTP init), plus one round trip
    for the first read's request and reply. Nothing can be read before those; after them a
    pipelined reader can keep the link busy, so the sum is what the link allows.
    """
    transfer = run["wire_down"] / (shape.bandwidth_bps / 8)
    logins = [e for e in run["result"]["events"] if e["name"] == "connect"]
    first_login = min((e["end"] - e["start"] for e in logins if e["n"] == 1), default=0.0)
    trips = first_login + 2 * shape.one_way_delay_s
    return transfer + trips, transfer, trips


def check_verdicts(
    name: str, runs: list[dict[str, Any]], truth: SiteTruth, shape: Any
) -> list[dict[str, Any]]:
    """The issue's check-pass goals that apply to one profile."""
    m = median_check_run(runs)
    r = m["result"]
    images = len(r["images"])
    out: list[dict[str, Any]] = []

    def add(goal: str, ok: bool, measured: str) -> None:
        out.append({"profile": name, "goal": goal, "ok": ok, "measured": measured})

    walls = ", ".join(f"{x['result']['wall_s']:.1f}" for x in runs)
    rate = images / r["wall_s"]
    if name == "lan":
        add(
            f"check pass >= {LAN_MIN_IMAGES_PER_S:g} images/s",
            rate >= LAN_MIN_IMAGES_PER_S,
            f"{rate:.1f} images/s ({images:,} images in {r['wall_s']:.1f} s, median run; "
            f"runs {walls} s)",
        )
    if name == "wan":
        need, transfer, trips = link_time(m, shape)
        share = need / r["wall_s"]
        add(
            f"check pass within {WAN_MIN_LINK_SHARE:.0%} of what the link allows "
            "(link time / wall)",
            share >= WAN_MIN_LINK_SHARE,
            f"{share:.2f}: link time {need:.1f} s ({m['wire_down'] / 1e6:,.0f} MB at "
            f"{shape.bandwidth_bps / 1e6:g} Mbit/s = {transfer:.1f} s, + {trips:.2f} s of round "
            f"trips) vs {r['wall_s']:.1f} s measured (median run; runs {walls} s)",
        )
    by_preview, whole, mean_share, max_share = preview_shares(m)
    add(
        f"bytes read <= {PREVIEW_MAX_SHARE:.2g} of the file, images with a preview (every one)",
        by_preview > 0 and max_share <= PREVIEW_MAX_SHARE,
        f"max {max_share:.3f}, mean {mean_share:.3f} over {by_preview:,} images read by preview "
        f"({whole} read whole)",
    )
    bands, band_share, band_max = band_shares(m)
    if bands:
        add(
            f"bytes read <= {BAND_MAX_SHARE:.2g} of the file on average, images without a preview",
            band_share <= BAND_MAX_SHARE,
            f"{band_share:.3f} over {bands:,} images read as a band (at most {band_max:.3f})",
        )
    truncated = {i.path for i in truth.images if i.error is not None}
    whole_ok = {p["path"] for p in r["pixels"] if p["source"] == "full"} <= truncated
    add(
        "previews read, not whole files (whole only where the preview is cut off)",
        whole_ok,
        f"{by_preview:,} previews, {whole} whole files, all of them truncated uploads"
        if whole_ok
        else f"{whole} whole files, some complete",
    )
    same = all(_verdict_set(x) == _verdict_set(m) for x in runs)
    s = scores(m, truth)
    for k in s.kinds:
        ok = k.precision >= MIN_PRECISION and k.recall >= MIN_RECALL
        add(
            f"{k.kind}: precision and recall >= {MIN_PRECISION:g}",
            ok and same,
            f"precision {k.precision:.3f}, recall {k.recall:.3f} (TP {k.true_pos}, "
            f"FP {k.false_pos}, FN {k.false_neg})" + ("" if same else "; runs disagree"),
        )
    add(
        f"clean photos flagged <= {MAX_CLEAN_FLAGGED:.0%}",
        s.clean_flagged_share <= MAX_CLEAN_FLAGGED and same,
        f"{len(s.clean_flagged)} of {s.clean:,} ({s.clean_flagged_share:.2%})",
    )
    return out


def render_checks(name: str, runs: list[dict[str, Any]], truth: SiteTruth, shape: Any) -> str:
    """The check pass's section of one profile's output."""
    m = median_check_run(runs)
    r, st = m["result"], m["result"]["stats"]
    images = len(r["images"])
    out = [
        "",
        (
            f"--- {name.upper()}: the check pass (check_site: previews read over SFTP, measured in "
            f"{r['workers']} worker processes, judged per site) ---"
        ),
        (
            f"{'':16} {'images':>7} {'seconds':>8} {'images/s':>9} {'MB read':>8} "
            f"{'bytes/image':>12} {'CPU s':>7} {'speed-up':>9} {'peak MB':>8}"
        ),
    ]
    cpu = r["client_cpu_s"] + r["workers_cpu_s"]
    out.append(
        f"{'check pass':16} {images:>7,} {r['wall_s']:>8.2f} {images / r['wall_s']:>9.1f} "
        f"{st['bytes_read'] / MB:>8.1f} {st['bytes_read'] / images:>12,.0f} {cpu:>7.2f} "
        f"{st['speedup']:>9.2f} {m['peak_mb']:>8.1f}"
    )
    out += [
        (
            f"median of {len(runs)} runs; CPU s = this process {r['client_cpu_s']:.2f} + measuring "
            f"processes {r['workers_cpu_s']:.2f} (server {m['server_cpu_s']:.2f} and link emulator "
            f"{m['link_cpu_s']:.2f} not included); speed-up = summed per-image measuring CPU "
            f"{st['cpu_seconds']:.2f} s / wall {st['seconds']:.2f} s (check_site's own stats); "
            f"peak MB = this process's VmHWM (the measuring processes: "
            f"{', '.join(f'{x:.1f}' for x in r['worker_peak_mb'])} MB)"
        ),
    ]
    by_preview, whole, mean_share, max_share = preview_shares(m)
    out.append(
        f"bytes: {by_preview:,} images read by preview ({mean_share:.3f} of the file on "
        f"average, at most {max_share:.3f}), {whole} read whole; the link carried "
        f"{m['wire_down'] / MB:.1f} MB down and {m['wire_up'] / MB:.1f} MB up"
    )
    bands, band_share, band_max = band_shares(m)
    if bands:
        out.append(
            f"bytes: {bands:,} images without a preview read as a band of top rows, thumbnail "
            f"and tail ({band_share:.3f} of their bytes, at most {band_max:.3f})"
        )
    if name == "wan":
        need, transfer, trips = link_time(m, shape)
        out.append(
            f"link: {shape.bandwidth_bps / 1e6:g} Mbit/s; {m['wire_down'] / 1e6:,.1f} MB "
            f"need {transfer:.2f} s + {trips:.2f} s of round trips (first login + 1 RTT) "
            f"= {need:.2f} s; measured {r['wall_s']:.2f} s: {need / r['wall_s']:.2f} of "
            f"the wall time is what the link needs ({transfer / r['wall_s']:.2f} counting "
            "the transfer alone)"
        )
    out += [
        "",
        "accuracy against the truth (median run):",
        (
            f"  {'kind':16} {'photos':>6} {'TP':>5} {'FP':>4} {'FN':>4} {'precision':>10} "
            f"{'recall':>7}"
        ),
    ]
    s = scores(m, truth)
    for k in s.kinds:
        ok = k.precision >= MIN_PRECISION and k.recall >= MIN_RECALL
        out.append(
            f"  {k.kind:16} {k.true_pos + k.false_neg:>6} {k.true_pos:>5} "
            f"{k.false_pos:>4} {k.false_neg:>4} {k.precision:>10.3f} {k.recall:>7.3f}  "
            f"[{verdict(ok)}]"
        )
    out.append(
        f"  clean photos flagged: {len(s.clean_flagged)} of {s.clean:,} "
        f"({s.clean_flagged_share:.2%})  "
        f"[{verdict(s.clean_flagged_share <= MAX_CLEAN_FLAGGED)}]"
    )
    misses = _misses(m, truth)
    if misses:
        out.append("  missed or wrongly flagged (first 12):")
        out += [f"    {line}" for line in misses[:12]]
    out += ["", "each check pass (load = 1-min load average before -> after; CPU seconds):"]
    out.append(
        f"  {'':22} {'wall s':>7} {'load':>11} {'wire MB dn/up':>14} {'TCP':>4} "
        f"{'client':>7} {'workers':>8} {'server':>7} {'link':>6} {'peak MB':>8} "
        f"{'(base)':>6}"
    )
    for x in runs:
        out.append(
            f"  {x['label']:22} {x['result']['wall_s']:7.2f} "
            f"{x['load_before'][0]:5.2f}->{x['load_after'][0]:<5.2f} "
            f"{x['wire_down'] / MB:8.1f}/{x['wire_up'] / MB:<5.1f} {x['tcp_connections']:4} "
            f"{x['result']['client_cpu_s']:7.2f} {x['result']['workers_cpu_s']:8.2f} "
            f"{x['server_cpu_s']:7.2f} {x['link_cpu_s']:6.2f} {x['peak_mb']:8.1f} "
            f"{x['baseline_mb']:6.1f}"
        )
    out += ["", "where the time went, check pass (median run):"]
    out += check_phases(m)
    return "\n".join(out)


def _misses(run: dict[str, Any], truth: SiteTruth) -> list[str]:
    """The photos a kind's score counts against it, with what the pass said about them."""
    by_name = {i["name"]: i for i in run["result"]["images"]}
    labels = {i.path: i.defects for i in truth.images}
    s = scores(run, truth)
    lines = [
        f"clean, flagged: {n}: " + "; ".join(o["message"] for o in by_name[n]["failures"])
        for n in s.clean_flagged
    ]
    for c in image_checks(run):
        mine = labels.get(c.name, frozenset())
        if mine and c.valid:
            lines.append(f"{'/'.join(sorted(mine))}, not flagged: {c.name}")
    return lines


def check_phases(run: dict[str, Any]) -> list[str]:
    """Logins and each connection's reads, from the timed connector's events."""
    events = run["result"]["events"]
    lines = []
    for e in (x for x in events if x["name"] == "connect"):
        role = "login (first connection)" if e["n"] == 1 else f"login, pool connection {e['n']}"
        lines.append(
            (
                e["start"],
                (
                    f"  {e['start']:7.3f} -> {e['end']:7.3f} s  "
                    f"{e['end'] - e['start']:7.3f} s  {role}"
                ),
            )
        )
    per_conn: dict[int, int] = {}
    for p in run["result"]["pixels"]:
        per_conn[p["conn"]] = per_conn.get(p["conn"], 0) + p["bytes"]
    reads = [x for x in events if x["name"] == "read pixels"]
    for e in reads:
        span = e["end"] - e["start"]
        mb = per_conn.get(e["conn"], 0) / MB
        lines.append(
            (
                e["start"],
                (
                    f"  {e['start']:7.3f} -> {e['end']:7.3f} s  {span:7.3f} s  "
                    f"reads on connection {e['conn']}: {e['files']} images, {mb:.1f} MB "
                    f"({e['files'] / span if span > 0 else 0:,.1f} images/s)"
                ),
            )
        )
    out = [line for _, line in sorted(lines)]
    if reads:
        start, end = min(e["start"] for e in reads), max(e["end"] for e in reads)
        total = sum(per_conn.values())
        out.append(
            f"  reading phase {start:.3f} -> {end:.3f} s: {total / MB:.1f} MB at "
            f"{total * 8 / 1e6 / (end - start):.0f} Mbit/s of file data"
        )
        out.append(
            f"  after the last read: {run['result']['wall_s'] - end:.3f} s (the last "
            "measures, judging the site, closing)"
        )
    return out


def slim(m: dict[str, Any]) -> dict[str, Any]:
    """A check-pass record for the JSON output, without its per-image lists."""
    result = {k: v for k, v in m["result"].items() if k not in ("images", "pixels")}
    return {**m, "result": result}


# --- the whole QC from the shell (bench/cli_run.py) ----------------------------------------

WAN_WHOLE_QC_MAX_S = 120.0  # issue 14: GPS + every check of the seed-shaped site
WHOLE_QC_MAX_MB = 300.0  # issue 14: peak memory of the whole QC (process tree)
WAN_WARM_CLI_MAX_S = 1.0  # issue 14: a warm `qc-tool scan` from the shell


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def render_cli(name: str, runs: dict[str, list[dict[str, Any]]]) -> str:
    """The whole QC from the shell: one row per run, then the medians."""
    out = [
        "",
        f"=== {name.upper()}: the whole QC from the shell (qc-tool scan; fresh process each) ===",
        (
            f"  {'run':24} {'wall s':>8} {'peak MB RSS':>12} {'PSS':>6} {'processes':>10} "
            f"{'images':>7} {'photos/s':>9} {'decision':>9}"
        ),
    ]
    for kind in ("cold", "warm"):
        for r in runs[kind]:
            rate = r["images"] / r["wall_s"] if r["wall_s"] else 0.0
            out.append(
                f"  {r['label']:24} {r['wall_s']:8.2f} {r['peak_tree_mb']:12.0f} "
                f"{r['peak_tree_pss_mb']:6.0f} {r['peak_processes']:10} {r['images']:7,} "
                f"{rate:9.1f} {r['decision']:>9}"
            )
    cold = runs["cold"]
    stats = [r["check_stats"] for r in cold if r.get("check_stats")]
    if stats:
        s = stats[len(stats) // 2]
        out.append(
            "  check pass of the middle cold run: "
            + ", ".join(f"{k} {v}" for k, v in s.items() if not isinstance(v, (dict, list)))
        )
    return "\n".join(out)


def cli_verdicts(name: str, runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    cold, warm = runs["cold"], runs["warm"]
    pss = max(r["peak_tree_pss_mb"] for r in cold)
    rss = max(r["peak_tree_mb"] for r in cold)
    out = [
        {
            "profile": name,
            "goal": f"whole QC peak memory (process tree, PSS) <= {WHOLE_QC_MAX_MB:g} MB",
            "ok": pss <= WHOLE_QC_MAX_MB,
            "measured": f"{pss:.0f} MB PSS, {rss:.0f} MB summed RSS (highest of {len(cold)} "
            "cold runs with --checks)",
        }
    ]
    if name == "wan":
        whole, warm_s = _median(cold, "wall_s"), _median(warm, "wall_s")
        out += [
            {
                "profile": name,
                "goal": f"WAN whole QC (GPS + every check) <= {WAN_WHOLE_QC_MAX_S:g} s",
                "ok": whole <= WAN_WHOLE_QC_MAX_S,
                "measured": f"{whole:.1f} s (median of "
                + ", ".join(f"{r['wall_s']:.1f}" for r in cold)
                + ")",
            },
            {
                "profile": name,
                "goal": f"warm `qc-tool scan` from the shell <= {WAN_WARM_CLI_MAX_S:g} s",
                "ok": warm_s <= WAN_WARM_CLI_MAX_S,
                "measured": f"{warm_s:.2f} s (median of "
                + ", ".join(f"{r['wall_s']:.2f}" for r in warm)
                + ")",
            },
        ]
    return out
