// The altitude profile: height above take-off (DJI XMP, once the checks read it) or else GPS
// altitude, over capture time, a line per folder in the folder's
// colour, the flagged time gaps as shaded bands, and the selected photo marked. Built as SVG
// by hand: a few hundred lines of chart library would draw the same dozen lines. Below it, the
// list of gaps in each folder's sequence (from the document's `gaps`).

import { byId, clear, el, svg } from "./dom.js";
import { byFolderName, byTakenThenPath, fileOf, timeOf } from "./model.js";

const W = 1000;
const H = 240;
const PAD = { left: 56, right: 16, top: 12, bottom: 28 };
const TICKS = 5;
const BREAK_MS = 5 * 60 * 1000;  // pauses longer than this are cut out of the time axis
const BREAK_W = 28;  // the width a cut-out pause keeps

function pad2(n) {
  return String(n).padStart(2, "0");
}

function clock(ms, withSeconds) {
  const d = new Date(ms);
  const hm = pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes());
  return withSeconds ? hm + ":" + pad2(d.getUTCSeconds()) : hm;
}

/**
 * The time axis: x of a capture time, its ticks and its breaks. Folders are often flown with
 * long pauses between them (minutes of walking to the next spot); each pause longer than
 * BREAK_MS is cut out of the axis and drawn as a dashed break, so each flight keeps a
 * readable width instead of becoming a vertical stroke.
 */
function timeAxis(times) {
  const spans = [];
  for (const ms of times) {
    const last = spans[spans.length - 1];
    if (last && ms - last.t1 <= BREAK_MS) {
      last.t1 = ms;
    } else {
      spans.push({ t0: ms, t1: ms });
    }
  }
  const flown = spans.reduce((sum, span) => sum + (span.t1 - span.t0), 0);
  // A span's share of the width follows its duration, with a floor so a short flight shows.
  const weight = (span) => Math.max(span.t1 - span.t0, flown * 0.06, 1000);
  const total = spans.reduce((sum, span) => sum + weight(span), 0);
  const usable = W - PAD.left - PAD.right - BREAK_W * (spans.length - 1);
  let at = PAD.left;
  for (const span of spans) {
    span.x0 = at;
    span.width = (weight(span) / total) * usable;
    at += span.width + BREAK_W;
  }
  function x(ms) {
    let span = spans[0];
    for (const candidate of spans) {
      if (ms >= candidate.t0) {
        span = candidate;
      }
    }
    if (ms > span.t1 && span !== spans[spans.length - 1]) {
      // In a cut-out pause (a gap band's edge): place it within the break.
      const next = spans[spans.indexOf(span) + 1];
      const f = (ms - span.t1) / (next.t0 - span.t1);
      return span.x0 + span.width + f * BREAK_W;
    }
    const length = span.t1 - span.t0;
    // A single-photo span sits in the middle of its width.
    const f = length > 0 ? (ms - span.t0) / length : 0.5;
    return span.x0 + Math.min(Math.max(f, 0), 1) * span.width;
  }
  const ticks = [];
  const breaks = [];
  spans.forEach((span, i) => {
    const seconds = span.t1 - span.t0 < 10 * 60 * 1000;  // a short flight: label seconds too
    if (span.t1 === span.t0) {
      ticks.push({ x: x(span.t0), label: clock(span.t0, seconds), anchor: "middle" });
    } else {
      ticks.push({ x: span.x0, label: clock(span.t0, seconds), anchor: "start" });
      if (span.width > 90) {
        ticks.push({ x: span.x0 + span.width, label: clock(span.t1, seconds), anchor: "end" });
      }
    }
    if (i > 0) {
      const pause = Math.round((span.t0 - spans[i - 1].t1) / 60000);
      breaks.push({ x: span.x0 - BREAK_W / 2, label: pause + " min" });
    }
  });
  return { x, ticks, breaks };
}

export class AltitudeProfile {
  constructor({ palette, onSelect }) {
    this.card = byId("profile-card");
    this.box = byId("profile");
    this.gapList = byId("gaps");
    this.palette = palette;
    this.onSelect = onSelect;
    this.points = [];  // {x, y, image}, in SVG units
    this.selected = null;
    this.mark = null;
  }

  /** Draw the photos that have both a time and an altitude: height above take-off when any
   * photo has one (then only those photos; heights and GPS altitudes are not comparable). */
  draw(images) {
    const known = (value) => value !== null && value !== undefined;
    const timed = images.filter((i) => !i.error && timeOf(i.taken) !== null);
    const byHeight = timed.some((i) => known(i.height_m));
    const altOf = byHeight ? (i) => i.height_m : (i) => i.alt;
    const usable = timed.filter((i) => known(altOf(i)));
    const what = byHeight ? "Height above take-off" : "GPS altitude";
    this.card.dataset.measure = byHeight ? "height" : "gps";
    // The table's Altitude column is the GPS altitude: the title says which one this is.
    byId("profile-title").textContent = what + " over time";
    this.card.hidden = false;
    clear(this.box);
    this.points = [];
    this.mark = null;
    if (usable.length === 0) {
      this.box.appendChild(el("p", { class: "muted" },
        "No photo has both a capture time and a GPS altitude, so there is no profile to draw."));
      return;
    }
    const times = usable.map((i) => timeOf(i.taken)).sort((a, b) => a - b);
    const alts = usable.map(altOf);
    let a0 = Math.min(...alts);
    let a1 = Math.max(...alts);
    const margin = Math.max((a1 - a0) * 0.08, 1);
    a0 -= margin;
    a1 += margin;
    const axis = timeAxis(times);
    const x = axis.x;
    const y = (alt) => H - PAD.bottom - ((alt - a0) / (a1 - a0)) * (H - PAD.top - PAD.bottom);
    const t0 = times[0];
    const t1 = times[times.length - 1];

    const chart = svg("svg", {
      viewBox: `0 0 ${W} ${H}`, class: "profile-chart", role: "img",
      "aria-label": `${what} of ${usable.length} photos from ${clock(t0, true)} to ` +
        `${clock(t1, true)}, between ${Math.round(a0 + margin)} and ${Math.round(a1 - margin)} m`,
    });
    this.axes(chart, axis, a0, a1, y);
    this.bands(chart, x);
    const byFolder = new Map();
    for (const image of usable) {
      if (!byFolder.has(image.folder)) {
        byFolder.set(image.folder, []);
      }
      byFolder.get(image.folder).push(image);
    }
    for (const [folder, members] of byFolder) {
      members.sort(byTakenThenPath);
      const coords = members.map((image) => {
        const point = { x: x(timeOf(image.taken)), y: y(altOf(image)), image };
        this.points.push(point);
        return point.x.toFixed(1) + "," + point.y.toFixed(1);
      });
      chart.appendChild(svg("polyline", {
        points: coords.join(" "), fill: "none", stroke: this.palette.colour(folder),
        "stroke-width": 1.8, "stroke-linejoin": "round", "data-folder": folder,
      }, svg("title", { text: folder })));
    }
    chart.addEventListener("click", (event) => this.pick(chart, event));
    this.chart = chart;
    this.box.appendChild(chart);
    this.markSelected();
  }

  axes(chart, axis, a0, a1, y) {
    const grid = svg("g", { class: "axes" });
    for (let i = 0; i <= TICKS; i += 1) {
      const alt = a0 + ((a1 - a0) * i) / TICKS;
      grid.appendChild(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(alt), y2: y(alt) }));
      grid.appendChild(svg("text", {
        x: PAD.left - 6, y: y(alt) + 4, "text-anchor": "end", text: Math.round(alt) + " m",
      }));
    }
    for (const tick of axis.ticks) {
      grid.appendChild(svg("line", { x1: tick.x, x2: tick.x, y1: PAD.top, y2: H - PAD.bottom }));
      grid.appendChild(svg("text", {
        x: tick.x, y: H - 8, "text-anchor": tick.anchor, text: tick.label,
      }));
    }
    chart.appendChild(grid);
    for (const cut of axis.breaks) {
      chart.appendChild(svg("line", {
        class: "axis-break", x1: cut.x, x2: cut.x, y1: PAD.top, y2: H - PAD.bottom,
      }, svg("title", { text: cut.label })));
      chart.appendChild(svg("text", {
        class: "axis-break-label", x: cut.x, y: PAD.top + 10, "text-anchor": "middle",
        text: cut.label,
      }));
    }
  }

  bands(chart, x) {
    // Time gaps of the document, shaded between the photos on either side of the pause.
    const byPath = new Map();
    for (const image of this.images || []) {
      byPath.set(image.path, image);
    }
    for (const gap of this.gaps || []) {
      if (gap.kind !== "time") {
        continue;
      }
      const from = timeOf((byPath.get(gap.after) || {}).taken);
      const to = timeOf((byPath.get(gap.before) || {}).taken);
      if (from !== null && to !== null) {
        chart.appendChild(svg("rect", {
          class: "gap-band", x: x(from), y: PAD.top, width: Math.max(2, x(to) - x(from)),
          height: H - PAD.top - PAD.bottom,
        }, svg("title", { text: gap.folder + ": " + gap.detail })));
      }
    }
  }

  /** The result document: the whole profile and the gap list. */
  setDocument(doc) {
    this.images = doc.images;
    this.gaps = doc.gaps;
    this.draw(doc.images);
    this.listGaps(doc.gaps);
  }

  listGaps(gaps) {
    clear(this.gapList);
    if (gaps === undefined) {
      this.gapList.appendChild(el("li", { class: "muted" }, "Gaps are not reported for this job."));
      return;
    }
    if (gaps.length === 0) {
      this.gapList.appendChild(el("li", { class: "muted" },
        "No gaps: each folder's photos follow at a steady interval with consecutive numbers."));
      return;
    }
    // Folders alphabetical, as everywhere on the page; each folder's gaps in sequence order.
    const ordered = gaps.map((gap, i) => [gap, i])
      .sort(([a, i], [b, j]) => byFolderName(a.folder, b.folder) || i - j)
      .map(([gap]) => gap);
    for (const gap of ordered) {
      const photo = (path) => {
        const button = el("button", { type: "button", class: "link path" }, fileOf(path));
        button.addEventListener("click", () => this.onSelect(path, "gaps"));
        return button;
      };
      this.gapList.appendChild(el("li", { "data-kind": gap.kind },
        el("span", { class: "tag warn" }, gap.kind === "time" ? "pause" : "numbering"), " ",
        el("strong", {}, gap.folder), ": " + gap.detail + " (between ", photo(gap.after),
        " and ", photo(gap.before), ")"));
    }
  }

  /** Mark the selected photo on the profile (if it is drawn there). */
  select(path) {
    this.selected = path;
    this.markSelected();
  }

  markSelected() {
    if (this.mark) {
      this.mark.remove();
      this.mark = null;
    }
    const point = this.points.find((p) => p.image.path === this.selected);
    if (point && this.chart) {
      this.mark = svg("circle", { class: "profile-mark", cx: point.x, cy: point.y, r: 6 });
      this.chart.appendChild(this.mark);
    }
  }

  /** A click on the chart picks the nearest photo. */
  pick(chart, event) {
    const matrix = chart.getScreenCTM();
    if (!matrix || this.points.length === 0) {
      return;
    }
    const at = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
    let best = null;
    let bestDistance = Infinity;
    for (const point of this.points) {
      const d = (point.x - at.x) ** 2 + (point.y - at.y) ** 2;
      if (d < bestDistance) {
        best = point;
        bestDistance = d;
      }
    }
    if (best && bestDistance < 40 ** 2) {
      this.onSelect(best.image.path, "profile");
    }
  }
}
