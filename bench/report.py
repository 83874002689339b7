"""Turn the measurements of one run into the printed tables, checks and goal verdicts.

Nothing here measures: every figure comes from the records ``bench.run`` collected, and
every verdict compares such a figure with the issue's goal.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from qc_tool.demo.sites import SiteTruth

MB = 1024 * 1024  # "MB" in the tables is MiB, as ru_maxrss counts
FULL_SITE = 1375

# The goals (never tuned here: a miss is reported as a miss).
WAN_COLD_MAX_S = 3.0
LAN_MIN_IMAGES_PER_S = 1000.0
BYTES_MAX_RATIO = 1.2
WAN_WARM_MAX_S = 1.0
WAN_KEPT_MAX_S = 0.3  # issue 14: a web rescan on the login's kept connection
PEAK_MAX_MB = 250.0


@dataclass(frozen=True)
class Row:
    name: str
    images: int
    seconds: float
    images_per_s: float
    bytes_per_image: float
    peak_mb: float
    extrapolated_s: float | None = None


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median scan time (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda m: m["result"]["wall_s"])
    return ordered[(len(ordered) - 1) // 2]


def old_row(name: str, m: dict[str, Any], site_images: int) -> Row:
    r = m["result"]
    return Row(
        name,
        r["images"],
        r["seconds"],
        r["images_per_s"],
        r["bytes_read"] / r["images"],
        m["peak_mb"],
        r["seconds"] * site_images / r["images"],
    )


def tool_row(name: str, runs: list[dict[str, Any]]) -> Row:
    m = median_run(runs)
    wall = m["result"]["wall_s"]  # the whole scan_site call, cache store and close included
    images = len(m["result"]["images"])
    return Row(
        name,
        images,
        wall,
        images / wall,
        m["result"]["stats"]["bytes_read"] / images,
        max(r["peak_mb"] for r in runs),
    )


def truth_mismatches(images: list[dict[str, Any]], truth: SiteTruth) -> list[str]:
    """Every way a scan's images differ from the truth; empty when all are exact."""
    expected = truth.by_path()
    got = {i["path"]: i for i in images}
    problems = [f"missing from scan: {p}" for p in sorted(set(expected) - set(got))]
    problems += [f"not in truth: {p}" for p in sorted(set(got) - set(expected))]
    for path in sorted(set(expected) & set(got)):
        image, want = got[path], expected[path]
        if want.error is not None:
            if image["error"] is None:
                problems.append(f"{path}: expected an error ({want.error}), got none")
            continue
        if image["error"] is not None:
            problems.append(f"{path}: unexpected error {image['error']!r}")
        for name in ("lat", "lon", "alt", "taken", "camera"):
            if image[name] != getattr(want, name):
                problems.append(f"{path}: {name} {image[name]!r} != {getattr(want, name)!r}")
    return problems


def reference_differences(cold: list[dict[str, Any]], reference: list[dict[str, Any]]) -> list[str]:
    """Differences between the pipelined scan and the one-at-a-time path on the sample."""
    fast = {i["path"]: i for i in cold}
    problems = []
    for ref in reference:
        got = fast.get(ref["path"])
        if got is None:
            problems.append(f"{ref['path']}: not in the pipelined scan")
            continue
        for key in ("size", "lat", "lon", "alt", "taken", "camera", "error", "gps_note"):
            if got[key] != ref[key]:
                problems.append(f"{ref['path']}: {key} {got[key]!r} (pipelined) != {ref[key]!r}")
    return problems


def byte_ratios(images: list[dict[str, Any]], truth: SiteTruth) -> tuple[float, float, float]:
    """(mean exif_end, mean and max of bytes_read / exif_end) over the images read."""
    ends = {i.path: i.exif_end for i in truth.images}
    ratios, sizes = [], []
    for image in images:
        end = ends.get(image["path"])
        if end and not image["cached"]:
            ratios.append(image["bytes_read"] / end)
            sizes.append(end)
    if not ratios:
        return 0.0, 0.0, 0.0
    return statistics.fmean(sizes), statistics.fmean(ratios), max(ratios)


def _fmt_int(value: float) -> str:
    return f"{value:,.0f}"


def render_table(rows: list[Row], sample_images: int, extra: list[Row] | None = None) -> str:
    """The goal rows, then any variant rows under their own heading."""
    head = (
        f"{'':16} {'images':>7} {'seconds':>9} {'images/s':>9} {'bytes/image':>12} "
        f"{'peak MB':>8}   {'s for 1,375':>12}"
    )
    lines = [head, "-" * len(head)]
    lines += [_row_line(r) for r in rows]
    if extra:
        lines.append("variant, not a goal row (the same cold scan with max_connections=1):")
        lines += [_row_line(r) for r in extra]
    lines.append(
        f"* extrapolated linearly from the {sample_images}-image sample "
        f"({sample_images} -> {FULL_SITE:,} images), not measured"
    )
    return "\n".join(lines)


def _row_line(r: Row) -> str:
    note = f"{r.extrapolated_s:>11,.0f}*" if r.extrapolated_s is not None else ""
    return (
        f"{r.name:16} {r.images:>7,} {r.seconds:>9.2f} {r.images_per_s:>9,.1f} "
        f"{_fmt_int(r.bytes_per_image):>12} {r.peak_mb:>8.1f}   {note:>12}"
    ).rstrip()


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def phases(run: dict[str, Any]) -> list[str]:
    """Where one scan's time went, from the timed collaborators' events."""
    events = run["result"]["events"]
    total = run["result"]["wall_s"]
    stats_s = run["result"]["stats"]["seconds"]
    lines = []
    logins = [e for e in events if e["name"] == "connect"]
    for e in logins:
        role = "login (first connection)" if e["n"] == 1 else f"login, pool connection {e['n']}"
        lines.append(
            f"  {e['start']:6.3f} -> {e['end']:6.3f} s  {e['end'] - e['start']:6.3f} s  {role}"
        )
    for name in (
        "list folders",
        "list images",
        "cache known",
        "cache lookup",
        "cache store",
        "cache prune",
    ):
        for e in (x for x in events if x["name"] == name):
            what = {
                "list folders": f"{e.get('count')} folders",
                "list images": f"{e.get('count')} files",
                "cache known": f"{e.get('count')} results cached for the site",
                "cache lookup": f"{e.get('hits')} hits",
                "cache store": f"{e.get('count')} results",
                "cache prune": f"{e.get('removed')} removed",
            }[name]
            lines.append(
                f"  {e['start']:6.3f} -> {e['end']:6.3f} s  {e['end'] - e['start']:6.3f} s  "
                f"{name} ({what})"
            )
    reads = sorted((e for e in events if e["name"] == "read"), key=lambda e: e["conn"])
    for e in reads:
        span = e["end"] - e["start"]
        first = f", first result after {e['first'] - e['start']:.3f} s" if e["first"] else ""
        rate = e["files"] / span if span > 0 else 0.0
        lines.append(
            f"  {e['start']:6.3f} -> {e['end']:6.3f} s  {span:6.3f} s  reads on connection "
            f"{e['conn']}: {e['files']} images ({rate:,.0f}/s{first})"
        )
    last = max((e["end"] for e in events), default=0.0)
    lines.sort(key=lambda s: float(s.split()[0]))
    if reads:
        start, end = min(e["start"] for e in reads), max(e["end"] for e in reads)
        lines.append(
            f"  reading phase: {start:.3f} -> {end:.3f} s = {end - start:.3f} s "
            f"({sum(e['files'] for e in reads) / (end - start):,.0f} images/s)"
        )
    lines.append(
        f"  scan_site call {total:.3f} s (its own stats.seconds, taken before the cache "
        f"store: {stats_s:.3f} s; after the last timed call: {total - last:.3f} s, "
        "closing the connections)"
    )
    return lines


# --- per profile ---------------------------------------------------------------------------


def profile_verdicts(name: str, res: dict[str, Any], data: Any) -> list[dict[str, Any]]:
    """The issue's goals and the correctness checks that apply to one profile."""
    truth: SiteTruth = data.truth
    cold = tool_row("tool cold", res["cold"])
    warm = tool_row("tool warm", res["warm"])
    walls = ", ".join(f"{m['result']['wall_s']:.2f}" for m in res["cold"])
    out: list[dict[str, Any]] = []

    def add(goal: str, ok: bool, measured: str) -> None:
        out.append({"profile": name, "goal": goal, "ok": ok, "measured": measured})

    if name == "wan":
        add(
            f"WAN cold scan <= {WAN_COLD_MAX_S:g} s",
            cold.seconds <= WAN_COLD_MAX_S,
            f"{cold.seconds:.2f} s (median of runs {walls})",
        )
    if name == "lan":
        add(
            f"LAN >= {LAN_MIN_IMAGES_PER_S:,.0f} images/s",
            cold.images_per_s >= LAN_MIN_IMAGES_PER_S,
            f"{cold.images_per_s:,.0f} images/s (median run; runs {walls} s)",
        )
    mean_end, mean_ratio, max_ratio = byte_ratios(
        median_run(res["cold"])["result"]["images"], truth
    )
    add(
        f"bytes/image <= {BYTES_MAX_RATIO:g} x exif_end (every image)",
        max_ratio <= BYTES_MAX_RATIO,
        f"max ratio {max_ratio:.2f}, mean {mean_ratio:.2f} ({cold.bytes_per_image:,.0f} bytes/image "
        f"read, mean exif_end {mean_end:,.0f})",
    )
    if name == "wan":
        opened = max(m["result"]["stats"]["files_opened"] for m in res["warm"])
        add(
            f"warm WAN <= {WAN_WARM_MAX_S:g} s with 0 files opened",
            warm.seconds <= WAN_WARM_MAX_S and opened == 0,
            f"{warm.seconds:.2f} s (median run), {opened} files opened "
            f"(most in any of {len(res['warm'])} runs)",
        )
    if name == "wan" and res.get("kept"):
        kept = tool_row("tool warm, kept connection", res["kept"])
        logins = max(m["result"]["logins"] for m in res["kept"])
        add(
            f"web rescan on the kept connection <= {WAN_KEPT_MAX_S:g} s, no login",
            kept.seconds <= WAN_KEPT_MAX_S and logins == 0,
            f"{kept.seconds:.2f} s (median run), {logins} logins "
            f"(most in any of {len(res['kept'])} runs)",
        )
    add(
        f"tool cold peak RSS < {PEAK_MAX_MB:g} MB",
        cold.peak_mb < PEAK_MAX_MB,
        f"{cold.peak_mb:.1f} MB (highest of {len(res['cold'])} runs)",
    )
    bad = [truth_mismatches(m["result"]["images"], truth) for m in res["cold"]]
    add(
        "cold scan matches the truth image by image",
        not any(bad),
        f"{max(len(b) for b in bad)} mismatches in {len(truth.images):,} images (worst run)"
        + (f"; first: {next(b for b in bad if b)[0]}" if any(bad) else ""),
    )
    ref = res["reference"]["result"]["images"]
    diffs = [reference_differences(m["result"]["images"], ref) for m in res["cold"]]
    add(
        "pipelined == one-at-a-time reference on the sample",
        not any(diffs),
        f"identical on {len(ref)} images"
        if not any(diffs)
        else f"{max(len(d) for d in diffs)} differences; first: {next(d for d in diffs if d)[0]}",
    )
    return out


def render_profile(name: str, res: dict[str, Any], data: Any, server: Any, repeat: int) -> str:
    from bench.linkemu import PROFILES

    shape = PROFILES[name]
    total = len(data.truth.images)
    rows = [
        old_row("old sequential", res["old_seq"], total),
        old_row("old 4 conn", res["old_4"], total),
        tool_row("tool cold", res["cold"]),
        tool_row("tool warm", res["warm"]),
    ]
    seq, four, cold, warm = rows
    single = tool_row("tool cold 1 conn", res["single"])
    extra = [single]
    if res.get("kept"):
        extra.append(tool_row("tool warm, kept connection", res["kept"]))
    th = res["threshold"]["result"]
    out = [
        "",
        (
            f"=== {name.upper()}: {shape.one_way_delay_s * 1000:g} ms one way, "
            f"{shape.bandwidth_bps / 1e6:,.0f} Mbit/s each way; server {server.kind}; "
            f"SFTP round trip measured {th['rtt_s'] * 1000:.1f} ms ==="
        ),
        render_table(rows, seq.images, extra=extra),
        (
            "tool rows: the whole site, median of "
            f"{repeat} runs (peak MB: highest run); old rows: the sample, one run"
        ),
        "",
        "ratios:",
        (
            f"  images/s, tool cold vs old 4 conn: {cold.images_per_s / four.images_per_s:,.0f}x; "
            f"vs old sequential: {cold.images_per_s / seq.images_per_s:,.0f}x"
        ),
        (
            f"  bytes/image, old vs tool cold: {four.bytes_per_image / cold.bytes_per_image:,.0f}x fewer"
            " bytes read by the tool"
        ),
        (
            f"  whole site: tool cold {cold.seconds:.2f} s vs old 4 conn {four.extrapolated_s:,.0f} s "
            f"(extrapolated) and old sequential {seq.extrapolated_s:,.0f} s (extrapolated)"
        ),
        f"  tool warm vs tool cold: {cold.seconds / warm.seconds:.1f}x faster",
        "",
        "goals and checks:",
    ]
    for v in profile_verdicts(name, res, data):
        out.append(f"  [{verdict(v['ok'])}] {v['goal']}: {v['measured']}")
    out += [
        "",
        (
            "each measurement (load = 1-min load average before -> after; wire = bytes through "
            "the link emulator; CPU seconds of client, server, link emulator):"
        ),
    ]
    out.append(
        f"  {'':34} {'wall s':>7} {'load':>11} {'wire MB dn/up':>14} {'TCP':>4} "
        f"{'client':>7} {'server':>7} {'link':>6} {'peak MB':>8} {'(base)':>6}"
    )
    for m in [
        *res["cold"],
        *res["warm"],
        *res.get("kept", []),
        *res["single"],
        res["reference"],
        res["threshold"],
        res["old_seq"],
        res["old_4"],
    ]:
        out.append(
            f"  {m['label']:34} {m['child_wall_s']:7.2f} "
            f"{m['load_before'][0]:5.2f}->{m['load_after'][0]:<5.2f} "
            f"{m['wire_down'] / MB:8.1f}/{m['wire_up'] / MB:<5.1f} {m['tcp_connections']:4} "
            f"{m['child_cpu_s']:7.2f} {m['server_cpu_s']:7.2f} {m['link_cpu_s']:6.2f} "
            f"{m['peak_mb']:8.1f} {m['baseline_mb']:6.1f}"
        )
    cold_run, warm_run = median_run(res["cold"]), median_run(res["warm"])
    facts = cold_run["result"]["facts"]
    stats = cold_run["result"]["stats"]
    per_image = cold_run["child_cpu_s"] * 1000 / len(cold_run["result"]["images"])
    out += [
        "",
        (
            f"where the time went, tool cold (median run; cipher {facts.get('cipher')}, "
            f"{stats['connections']} connections, {stats['files_opened']:,} files opened; "
            f"client CPU {cold_run['child_cpu_s']:.2f} s = {per_image:.2f} ms per image):"
        ),
    ]
    out += phases(cold_run)
    out += ["", "where the time went, tool warm (median run):"]
    out += phases(warm_run)
    single_run = median_run(res["single"])
    out += [
        "",
        (
            "where the time went, tool cold on 1 connection (median run; client CPU "
            f"{single_run['child_cpu_s']:.2f} s):"
        ),
    ]
    out += phases(single_run)
    out += ["", render_threshold(th)]
    return "\n".join(out)


def render_threshold(th: dict[str, Any]) -> str:
    """The small-folder question: one pipelined connection vs one-at-a-time vs more connections."""
    variants: list[tuple[int, bool]] = []
    for row in th["rows"]:
        if (row["k"], row["pipelined"]) not in variants:
            variants.append((row["k"], row["pipelined"]))
    label = {v: f"{v[0]} conn {'pipelined' if v[1] else 'one-at-a-time'}" for v in variants}
    lines = [
        (
            "small folders: seconds to read the first n images of one folder on connections "
            "already open (median of 3):"
        ),
        "  " + f"{'n':>4} " + " ".join(f"{label[v]:>24}" for v in variants),
    ]
    sizes = sorted({row["n"] for row in th["rows"]})
    for n in sizes:
        cells = []
        for v in variants:
            row = next(r for r in th["rows"] if r["n"] == n and (r["k"], r["pipelined"]) == v)
            cells.append(f"{row['median_s']:>22.3f} s" + ("!" if row["errors"] else ""))
        lines.append("  " + f"{n:>4} " + " ".join(cells))
    for row in th.get("site_rows", []):
        lines.append(
            f"  whole site ({row['n']:,} images) on {row['k']} open connection(s), "
            f"pipelined: {row['median_s']:.3f} s = {row['n'] / row['median_s']:,.0f} "
            f"images/s (median of {len(row['seconds'])})" + (" !" if row["errors"] else "")
        )
    logins = sorted(th["logins_s"])
    lines.append(
        f"  opening one connection (login) took {statistics.median(logins):.3f} s "
        f"(median of {len(logins)}: {', '.join(f'{x:.3f}' for x in logins)})"
    )
    return "\n".join(lines)


def render_local(m: dict[str, Any]) -> str:
    """The client's CPU floor: the same scan of the same files from the local disk."""
    r = m["result"]
    per = 1000 / r["images"]
    return (
        f"local floor (scan_site through LocalConnector, no SSH, same files): {r['images']:,} "
        f"images in {r['wall_s']:.2f} s; then, per image, CPU of the header walk "
        f"{r['walk_cpu_s'] * per:.2f} ms (pread included) and of summarize (EXIF -> GPS, "
        f"time, camera) {r['summarize_cpu_s'] * per:.2f} ms"
    )


def goal_verdicts(results: dict[str, Any], data: Any) -> list[dict[str, Any]]:
    return [v for name, res in results.items() for v in profile_verdicts(name, res, data)]


def render_summary(verdicts: list[dict[str, Any]]) -> str:
    lines = ["", "=== summary ==="]
    lines += [
        f"  [{verdict(v['ok'])}] {v['profile']}: {v['goal']}: {v['measured']}" for v in verdicts
    ]
    return "\n".join(lines)


def to_json(
    info: dict[str, Any],
    data: Any,
    server: Any,
    results: dict[str, Any],
    verdicts: list[dict[str, Any]],
) -> dict[str, Any]:
    """Every figure of the run, without the per-image lists (the truth has those)."""

    def slim(m: dict[str, Any]) -> dict[str, Any]:
        result = {k: v for k, v in m["result"].items() if k != "images"}
        return {**m, "result": result}

    profiles: dict[str, Any] = {}
    for name, res in results.items():
        if name == "local_floor":
            profiles[name] = res
            continue
        profiles[name] = {
            "rows": [
                r.__dict__
                for r in (
                    old_row("old sequential", res["old_seq"], len(data.truth.images)),
                    old_row("old 4 conn", res["old_4"], len(data.truth.images)),
                    tool_row("tool cold", res["cold"]),
                    tool_row("tool warm", res["warm"]),
                    tool_row("tool cold 1 conn", res["single"]),
                    *(
                        [tool_row("tool warm, kept connection", res["kept"])]
                        if res.get("kept")
                        else []
                    ),
                )
            ],
            "measurements": {
                k: [slim(m) for m in v] if isinstance(v, list) else slim(v) for k, v in res.items()
            },
        }
    return {
        "machine": info,
        "server": {"kind": server.kind, "version": server.version},
        "data": {
            "label": data.label,
            "images": len(data.truth.images),
            "bytes": data.truth.total_bytes,
            "disk_bytes": data.disk_bytes,
            "sample_images": data.sample_count,
        },
        "profiles": profiles,
        "verdicts": verdicts,
    }


FRAMING_WAYS = (
    ("framed", "framed (wire.py)"),
    ("unframed", "unframed (paramiko's own)"),
)


def render_framing(name: str, framing: dict[str, list[dict[str, Any]]], data: Any) -> str:
    """Cold scans with and without the wire's framing: packets, channel reads, client CPU.

    Each column is the median over that way's runs; every run is listed below with its load.
    """
    images = len(data.truth.images)

    def med(runs: list[dict[str, Any]], value: Any) -> float:
        return float(statistics.median(value(m) for m in runs))

    header = (
        f"  {'':28} {'wall s':>7} {'img/s':>6} {'client CPU s':>12} {'ms/img':>7} "
        f"{'SSH out':>8} {'/img':>5} {'SSH in':>7} {'chan reads':>10} {'requests':>9} "
        f"{'KB up':>7} {'wrong':>5}"
    )
    out = [
        "",
        (
            f"=== {name.upper()}: the SFTP wire's framing, cold scans of the whole site "
            f"({images:,} images), median of {len(framing['framed'])} runs each way ==="
        ),
        header,
    ]
    medians: dict[str, dict[str, float]] = {}
    for way, label in FRAMING_WAYS:
        runs = framing[way]
        row = {
            "wall": med(runs, lambda m: m["result"]["wall_s"]),
            "cpu": med(runs, lambda m: m["child_cpu_s"]),
            "out": med(runs, lambda m: m["result"]["packets"]["ssh_packets_out"]),
            "in": med(runs, lambda m: m["result"]["packets"]["ssh_packets_in"]),
            "reads": med(runs, lambda m: m["result"]["packets"]["channel_reads"]),
            "requests": med(runs, lambda m: m["result"]["packets"]["sftp_requests"]),
            "up": med(runs, lambda m: m["wire_up"]),
        }
        medians[way] = row
        wrong = max(len(truth_mismatches(m["result"]["images"], data.truth)) for m in runs)
        out.append(
            f"  {label:28} {row['wall']:7.2f} {images / row['wall']:6.0f} {row['cpu']:12.2f} "
            f"{row['cpu'] * 1000 / images:7.2f} {row['out']:8,.0f} {row['out'] / images:5.2f} "
            f"{row['in']:7,.0f} {row['reads']:10,.0f} {row['requests']:9,.0f} "
            f"{row['up'] / 1024:7,.0f} {wrong:5}"
        )
    framed, unframed = medians["framed"], medians["unframed"]
    out += [
        (
            f"  unframed / framed: SSH packets out {unframed['out'] / framed['out']:.1f}x, "
            f"channel reads {unframed['reads'] / framed['reads']:.1f}x, client CPU "
            f"{unframed['cpu'] / framed['cpu']:.2f}x, wall {unframed['wall'] / framed['wall']:.2f}x"
        ),
        (
            "  client CPU: the scanning process (EXIF parsing workers not included); SSH "
            "in/out and requests: counted in it (bench/packets.py), logins included; KB up: "
            "through the link emulator; wrong: images differing from the truth (worst run)"
        ),
        "",
        "  each run (load = 1-min load average before -> after):",
    ]
    for way, _ in FRAMING_WAYS:
        for m in framing[way]:
            out.append(
                f"    {m['label']:24} wall {m['result']['wall_s']:5.2f} s, load "
                f"{m['load_before'][0]:.2f}->{m['load_after'][0]:.2f}, client CPU "
                f"{m['child_cpu_s']:.2f} s, SSH out {m['result']['packets']['ssh_packets_out']:,}"
            )
    return "\n".join(out)


def slim_framing(framing: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The framing runs for the JSON file, without the per-image lists."""
    return {
        way: [
            {**m, "result": {k: v for k, v in m["result"].items() if k != "images"}} for m in runs
        ]
        for way, runs in framing.items()
    }
