// The parts of the review that summarise the doc: totals, the folder table, the checks'
// counts and measured cost, the images without GPS, the site structure, and the downloads.

import { byId, clear, el } from "./dom.js";
import { checked, failures, hasGps, showBytes, totalsOf } from "./model.js";

function stat(value, label, tone) {
  return el("div", { class: "stat" + (tone ? " " + tone : "") },
    el("span", { class: "value" }, String(value)), el("span", { class: "label" }, label));
}

function failedPhotos(doc) {
  return doc.images.filter((image) => image.checks && !image.checks.valid);
}

export function renderTotals(doc) {
  const totals = totalsOf(doc);
  const stats = doc.stats || {};
  const section = window.document.querySelector("section.totals");
  clear(section);
  section.append(
    stat(totals.images, "images"),
    stat(totals.gps_points, "GPS points", "good"),
    stat(totals.missing_gps, "missing GPS", totals.missing_gps ? "warn" : ""),
    stat(totals.errors, "unreadable", totals.errors ? "bad" : ""),
    stat((stats.seconds || 0).toFixed(2) + " s", "scan time"),
    stat((stats.images_per_s || 0).toFixed(1), "images/s"),
    stat(stats.connections ?? "", "connections"),
    stat(stats.cached ?? 0, "from cache"),
  );
  if (checked(doc)) {
    const failed = failedPhotos(doc).length;
    section.append(stat(failed, "photos failing checks", failed ? "bad" : "good"));
  }
  section.hidden = false;
}

export function renderFolders(doc, palette) {
  const body = byId("folders").tBodies[0];
  clear(body);
  const withChecks = checked(doc);
  for (const folder of doc.folders) {
    if (folder.skipped) {
      // Not read: its name cannot be used as a path (shown escaped by the server).
      body.appendChild(el("tr", { "data-folder": folder.name, class: "skipped" },
        el("td", {}, folder.name),
        el("td", { colspan: "5" }, el("span", { class: "tag bad" }, "skipped"),
          " " + folder.skipped)));
      continue;
    }
    const kinds = Object.entries(folder.failures || {}).sort();
    body.appendChild(el("tr", { "data-folder": folder.name },
      el("td", {}, el("span", { class: palette.swatchClass(folder.name) }), folder.name),
      el("td", { class: "num" }, String(folder.images)),
      el("td", { class: "num" }, String(folder.gps_points)),
      el("td", { class: "num" + (folder.missing_gps ? " warn" : "") }, String(folder.missing_gps)),
      el("td", { class: "num" + (folder.errors ? " bad" : "") }, String(folder.errors)),
      el("td", {}, !withChecks ? el("span", { class: "muted" }, "not checked")
        : kinds.length === 0 ? el("span", { class: "muted" }, "none")
          : kinds.map(([kind, n]) => [el("span", { class: "tag bad" },
            kind.replace(/_/g, " ") + " " + n), " "])),
    ));
  }
  byId("folders-card").hidden = false;
}

export function renderChecks(doc) {
  const card = byId("checks");
  if (!checked(doc)) {
    card.hidden = true;
    return;
  }
  const judged = doc.images.filter((image) => image.checks);
  const failed = failedPhotos(doc);
  byId("checks-title").textContent =
    "Photo checks: " + failed.length + " of " + judged.length + " photos failed";
  const kinds = new Map();
  for (const image of failed) {
    for (const name of new Set(failures(image).map((o) => o.name))) {
      kinds.set(name, (kinds.get(name) || 0) + 1);
    }
  }
  const list = byId("check-kinds");
  clear(list);
  for (const [name, n] of Array.from(kinds).sort((a, b) => b[1] - a[1])) {
    list.append(el("span", { class: "tag bad" }, name.replace(/_/g, " ") + ": " + n), " ");
  }
  if (kinds.size === 0) {
    list.append(el("span", { class: "muted" }, "Every photo passed the checks."));
  }
  const s = doc.check_stats;
  byId("check-stats").textContent =
    s.images_per_s.toFixed(1) + " photos/s over " + s.seconds.toFixed(1) + " s (" +
    Math.round(s.seconds_per_image * 1000) + " ms per photo); " + s.preview_images +
    " judged from the embedded preview, " + s.full_images + " from the whole file; " +
    showBytes(s.bytes_read) + " read, " + s.cached + " from cache; measuring CPU " +
    s.cpu_seconds.toFixed(1) + " s = " + s.speedup.toFixed(2) + "× the wall time; peak memory " +
    Math.round(s.peak_rss_mb) + " MB.";
  card.hidden = false;
}

export function renderProblems(doc) {
  const problems = doc.images.filter((image) => image.error || !hasGps(image));
  const body = byId("problems").tBodies[0];
  clear(body);
  for (const image of problems) {
    body.appendChild(el("tr", { "data-path": image.path },
      el("td", { class: "path" }, image.path),
      el("td", {}, image.error ? el("span", { class: "tag bad" }, "unreadable")
        : el("span", { class: "tag warn" }, "no GPS")),
      el("td", {}, image.error || image.gps_note || "no GPS position")));
  }
  byId("problems-title").textContent =
    "Images without GPS or unreadable (" + problems.length + ")";
  byId("problems").hidden = problems.length === 0;
  byId("problems-none").hidden = problems.length > 0;
  byId("problems-card").hidden = false;
}

export function renderStructure(doc) {
  const structure = doc.structure;
  const card = byId("structure");
  if (!structure) {
    card.hidden = true;  // no site profile configured
    return;
  }
  const list = byId("structure-list");
  clear(list);
  for (const pattern of structure.missing || []) {
    list.appendChild(el("li", {}, el("span", { class: "tag bad" }, "missing"),
      " no folder matches " + pattern));
  }
  for (const low of structure.too_few || []) {
    list.appendChild(el("li", {}, el("span", { class: "tag bad" }, "too few"),
      " " + low.folder + ": " + low.images + " photos, at least " + low.minimum + " expected"));
  }
  for (const name of structure.unexpected || []) {
    list.appendChild(el("li", {}, el("span", { class: "tag warn" }, "unexpected"),
      " " + name + " is not in the site profile"));
  }
  if (structure.ok) {
    list.prepend(el("li", {}, el("span", { class: "tag good" }, "complete"),
      " every expected folder is there with enough photos"));
  }
  card.hidden = false;
}

/** The download links, once the job is done (a failed or cancelled job has nothing final). */
export function renderExports(exportUrl, done) {
  const card = byId("exports");
  if (!done) {
    card.hidden = true;
    return;
  }
  for (const link of card.querySelectorAll("a[data-kind]")) {
    link.href = exportUrl + link.dataset.kind;
  }
  card.hidden = false;
}
