// The parts of the review that summarise the document: the folder table (with the verdict's
// re-fly items), the site structure, the downloads, and the collapsed scan details.

import { byId, clear, el } from "./dom.js";
import { byFolderName, showBytes } from "./model.js";

/** Every folder, alphabetical: its photos and GPS points, and what the verdict found in it. */
export function renderFolders(doc, palette, kinds) {
  const body = byId("folders").tBodies[0];
  clear(body);
  const refly = new Map((doc.verdict ? doc.verdict.refly : []).map((item) => [item.folder, item]));
  const folders = doc.folders.slice().sort((a, b) => byFolderName(a.name, b.name));
  for (const folder of folders) {
    if (folder.skipped) {
      // Not read: its name cannot be used as a path (shown escaped by the server).
      body.appendChild(el("tr", { "data-folder": folder.name, class: "skipped" },
        el("td", {}, folder.name),
        el("td", { colspan: "6" }, el("span", { class: "tag bad" }, "skipped"),
          " " + folder.skipped)));
      continue;
    }
    const item = refly.get(folder.name);
    const invalid = item ? item.photos.length : 0;
    const why = item ? item.reasons.map((key) => el("span", { class: "tag bad" },
      kinds.label(key))) : [el("span", { class: "muted" }, "–")];
    body.appendChild(el("tr", { "data-folder": folder.name },
      el("td", {}, el("span", { class: palette.swatchClass(folder.name) }), folder.name),
      el("td", { class: "num" }, String(folder.images)),
      el("td", { class: "num subfolders" }, folder.in_subfolders ? String(folder.in_subfolders) : ""),
      el("td", { class: "num" }, String(folder.gps_points)),
      el("td", { class: "num" + (invalid ? " bad" : "") }, String(invalid)),
      el("td", { class: "others" }, otherFiles(folder)),
      el("td", { class: "why" }, why)));
  }
  byId("folders-card").hidden = false;
}

/** A folder's files that are not photos, and what was not searched: counts, the list on demand. */
function otherFiles(folder) {
  const others = folder.others || [];
  const notSearched = folder.not_searched || [];
  const count = folder.other_files || 0;
  if (!count && !notSearched.length) {
    return "";
  }
  const label = [count ? count + (count === 1 ? " file" : " files") : "",
    notSearched.length ? notSearched.length + " not searched" : ""].filter(Boolean).join(", ");
  const items = others.map((o) => el("li", {}, o.path + " (" + showBytes(o.size) + ")"));
  if (count > others.length) {
    items.push(el("li", { class: "muted" }, "and " + (count - others.length) + " more"));
  }
  for (const n of notSearched) {
    items.push(el("li", { class: "bad" }, n.path + ": not searched, " + n.reason));
  }
  return el("details", { class: "other-files" }, el("summary", {}, label),
    el("ul", { class: "plain" }, items));
}

export function renderStructure(doc) {
  const structure = doc.structure;
  const card = byId("structure");
  if (!structure) {
    card.hidden = true;  // no site profile: the verdict's notes say completeness was not checked
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

function fixed(value, digits) {
  return typeof value === "number" ? value.toFixed(digits) : "";
}

/** How the photos were read and measured: rates, connections, cache, CPU. Collapsed. */
export function renderDetails(doc) {
  const list = byId("scan-stats");
  clear(list);
  const facts = [];
  const s = doc.stats;
  if (s) {
    facts.push(["Headers read", fixed(s.seconds, 2) + " s, " + fixed(s.images_per_s, 1) +
      " images/s"]);
    facts.push(["Connections", String(s.connections)]);
    facts.push(["From cache", s.cached + " of " + doc.images.length + " headers"]);
    facts.push(["Header bytes read", showBytes(s.bytes_read)]);
  }
  const c = doc.check_stats;
  if (c) {
    const measured = c.preview_images + c.full_images;
    facts.push(["Photo checks", fixed(c.seconds, 1) + " s" + (measured
      ? ", " + fixed(c.images_per_s, 1) + " photos/s (" + Math.round(c.seconds_per_image * 1000) +
        " ms per photo)" : "")]);
    facts.push(["Measured from", c.preview_images + " embedded previews, " + c.full_images +
      " whole files; " + c.cached + " from cache"]);
    facts.push(["Check connections", String(c.connections)]);
    facts.push(["Image bytes read", showBytes(c.bytes_read)]);
    facts.push(["Measuring CPU", fixed(c.cpu_seconds, 1) + " s (" + fixed(c.speedup, 2) +
      "× the wall time); peak memory " + Math.round(c.peak_rss_mb) + " MB"]);
  }
  for (const [label, value] of facts) {
    list.append(el("dt", {}, label), el("dd", {}, value));
  }
  byId("scan-details").hidden = facts.length === 0;
}
