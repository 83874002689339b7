// The table of every photo: sortable by any column, filtered by folder, problem kind and text.
// Rows are built once per document (and appended as photos arrive live); sorting moves the
// existing rows and filtering toggles their `hidden`, so 1,400 rows stay quick.

import { byId, clear, el } from "./dom.js";
import {
  byFolderName, fileOf, Kinds, messagesOf, showNumber, showTime, statusOf,
} from "./model.js";

const TEXT_DELAY_MS = 120;
const STATUS_RANK = { invalid: 0, unchecked: 1000, valid: 2000 };

// Sort keys per column; missing values sort last whichever the direction.
const KEYS = {
  folder: (row) => row.image.folder.toLowerCase(),
  file: (row) => fileOf(row.image.path),
  time: (row) => row.image.taken || null,
  lat: (row) => row.image.lat ?? null,
  lon: (row) => row.image.lon ?? null,
  alt: (row) => row.image.alt ?? null,
  // Worst first: invalid (by its worst reason), then not judged, then valid.
  status: (row) => STATUS_RANK[row.status] + (row.problems.length ? row.worst : 0),
};

function compareValues(a, b) {
  if (a === b) {
    return 0;
  }
  return a < b ? -1 : 1;
}

/** Rows in the table's own order when unsorted: folders alphabetical, then the scan's order. */
function byFolderThenOrder(a, b) {
  return byFolderName(a.image.folder, b.image.folder) || a.index - b.index;
}

export class ImageTable {
  constructor({ palette, onSelect, onFilter }) {
    this.table = byId("images");
    this.body = this.table.tBodies[0];
    this.box = byId("images-box");
    this.count = byId("images-count");
    this.empty = byId("images-empty");
    this.folderSelect = byId("filter-folder");
    this.kindSelect = byId("filter-kind");
    this.textInput = byId("filter-text");
    this.clearButton = byId("filter-clear");
    this.palette = palette;
    this.onSelect = onSelect;
    this.onFilter = onFilter;
    this.kinds = new Kinds([]);
    this.rows = new Map();  // path -> {tr, image, index, status, problems, worst, text, measured}
    this.order = [];  // rows in document (arrival) order: the unsorted order
    this.sort = null;  // {key, dir: 1 | -1}
    this.stage = "gps";  // gps: verdicts to come | checked: verdicts in | nochecks: none coming
    this.selected = null;
    this.tabStop = null;  // the row that Tab reaches
    this.filtered = false;
    this.listen();
  }

  listen() {
    this.table.tHead.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-sort]");
      if (button) {
        this.sortBy(button.dataset.sort);
      }
    });
    this.body.addEventListener("click", (event) => {
      const tr = event.target.closest("tr[data-path]");
      if (tr) {
        this.onSelect(tr.dataset.path, "table");
      }
    });
    this.body.addEventListener("keydown", (event) => this.key(event));
    this.folderSelect.addEventListener("change", () => this.applyFilter());
    this.kindSelect.addEventListener("change", () => this.applyFilter());
    this.clearButton.addEventListener("click", () => this.clearFilters());
    let timer = null;
    this.textInput.addEventListener("input", () => {
      window.clearTimeout(timer);
      timer = window.setTimeout(() => this.applyFilter(), TEXT_DELAY_MS);
    });
  }

  key(event) {
    const tr = event.target.closest("tr[data-path]");
    if (!tr) {
      return;
    }
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      this.onSelect(tr.dataset.path, "table");
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      let next = tr;
      do {
        next = event.key === "ArrowDown" ? next.nextElementSibling : next.previousElementSibling;
      } while (next && next.hidden);
      if (next) {
        next.focus();
        this.onSelect(next.dataset.path, "table");
      }
    }
  }

  /** The verdicts' stage decides what a row without problems says (from the next replace). */
  setStage(stage) {
    this.stage = stage;
  }

  /** The verdict's kinds: the badges' names and the filter's reasons, each with its count. */
  setKinds(kinds, reasons) {
    this.kinds = kinds;
    const counts = new Map(reasons.map((reason) => [reason.kind, reason.count]));
    const group = byId("filter-kinds");
    const chosen = this.kindSelect.value;
    clear(group);
    for (const kind of kinds.list) {
      group.appendChild(el("option", { value: kind.kind },
        kind.label + " (" + (counts.get(kind.kind) || 0) + ")"));
    }
    this.kindSelect.value = chosen;
    if (this.kindSelect.value !== chosen) {
      this.kindSelect.value = "";
    }
  }

  /** Exactly the photos of the result document, in its order (unless sorted). */
  replace(images) {
    const keep = new Set(images.map((image) => image.path));
    for (const [path, row] of this.rows) {
      if (!keep.has(path)) {
        row.tr.remove();
        this.rows.delete(path);
      }
    }
    this.order = this.order.filter((row) => keep.has(row.image.path));
    this.update(images);  // rows that did not change are left as they are
    this.order = images.map((image) => this.rows.get(image.path));
    this.order.forEach((row, i) => { row.index = i; });
    this.order.sort(byFolderThenOrder);
    if (this.sort) {
      this.arrange();
    } else {
      const fragment = document.createDocumentFragment();
      for (const row of this.order) {
        fragment.appendChild(row.tr);
      }
      this.body.appendChild(fragment);
    }
    this.moveTabStop();
  }

  /** Add or update photos (a live batch, or a whole document). */
  update(images) {
    const fragment = document.createDocumentFragment();
    for (const image of images) {
      let row = this.rows.get(image.path);
      if (row) {
        row.image = image;
      } else {
        // One row is in the tab order (roving tabindex); the arrow keys move between rows.
        const tr = el("tr", { "data-path": image.path, tabindex: "-1", role: "row" });
        row = { tr, image, index: this.order.length, measured: false, key: null };
        this.rows.set(image.path, row);
        this.order.push(row);
        fragment.appendChild(row.tr);
      }
      this.fill(row);
    }
    this.body.appendChild(fragment);
    this.refreshFolders();
    if (this.sort) {
      this.arrange();
    }
    if (this.selected && this.rows.has(this.selected)) {
      this.rows.get(this.selected).tr.classList.add("selected");
    }
    this.applyFilter();
  }

  /** A photo was measured (the checks' verdicts come later, all at once). */
  measured(path) {
    const row = this.rows.get(path);
    if (row && !row.measured) {
      row.measured = true;
      if (row.status !== "invalid" && this.stage === "gps") {
        const cell = row.tr.lastElementChild;  // only the status says so: no row rebuild
        clear(cell);
        cell.append(el("span", { class: "muted" }, "measured"));
      }
    }
  }

  fill(row) {
    const image = row.image;
    row.status = statusOf(image);
    row.problems = image.problems || [];
    row.worst = row.problems.length ? this.kinds.rank(row.problems[0]) : 0;
    row.text = (image.path + " " + messagesOf(image).join(" ")).toLowerCase();
    const cells = [
      [this.palette.swatchClass(image.folder), image.folder],
      ["path", fileOf(image.path)],
      ["time", showTime(image.taken)],
      ["num", showNumber(image.lat, 6)],
      ["num", showNumber(image.lon, 6)],
      ["num", showNumber(image.alt, 1)],
    ];
    // A new document repeats most rows as they were: rebuild only the rows that changed.
    const key = JSON.stringify([cells, this.stage, row.measured, row.status, row.problems]);
    if (key === row.key) {
      return;
    }
    row.key = key;
    const cell = (cls, ...content) => el("td", { class: cls, role: "cell" }, ...content);
    const tr = row.tr;
    clear(tr);
    tr.append(
      cell("", el("span", { class: cells[0][0] }), cells[0][1]),
      ...cells.slice(1).map(([cls, text]) => cell(cls, text)),
      cell("status", this.status(row)),
    );
    tr.classList.toggle("failed", row.status === "invalid");
  }

  status(row) {
    if (row.problems.length > 0) {
      return row.problems.map((key) => el("span", { class: "tag bad", "data-kind": key },
        this.kinds.label(key)));
    }
    if (row.status === "valid") {
      return el("span", { class: "tag good" }, "valid");
    }
    if (this.stage === "gps") {
      return row.measured ? el("span", { class: "muted" }, "measured") : null;
    }
    return el("span", { class: "tag warn", title: "the photo checks did not judge this photo" },
      "not judged");
  }

  /** The folder filter lists every folder, alphabetical. */
  refreshFolders() {
    const select = this.folderSelect;
    const have = new Set(Array.from(select.options, (option) => option.value));
    const fresh = [];
    for (const row of this.order) {
      const folder = row.image.folder;
      if (!have.has(folder)) {
        have.add(folder);
        fresh.push(folder);
      }
    }
    if (fresh.length === 0) {
      return;
    }
    const chosen = select.value;
    const names = Array.from(have).filter(Boolean).sort(byFolderName);
    while (select.options.length > 1) {
      select.remove(1);
    }
    for (const name of names) {
      select.appendChild(el("option", { value: name }, name));
    }
    select.value = chosen;
  }

  setFolder(folder) {
    this.folderSelect.value = this.folderSelect.value === folder ? "" : folder;
    this.applyFilter();
  }

  /** Exactly these filters (the re-fly list: one folder's invalid photos). */
  filterTo(folder, kind) {
    this.folderSelect.value = folder;
    this.kindSelect.value = kind;
    this.textInput.value = "";
    this.applyFilter();
  }

  clearFilters() {
    this.filterTo("", "");
  }

  sortBy(key) {
    const dir = this.sort && this.sort.key === key ? -this.sort.dir : 1;
    this.sort = { key, dir };
    for (const th of this.table.tHead.rows[0].cells) {
      const button = th.querySelector("button[data-sort]");
      const on = button && button.dataset.sort === key;
      th.setAttribute("aria-sort", on ? (dir === 1 ? "ascending" : "descending") : "none");
    }
    this.arrange();
  }

  arrange() {
    const { key, dir } = this.sort;
    const value = KEYS[key];
    const rows = this.order.slice();
    rows.sort((a, b) => {
      const va = value(a);
      const vb = value(b);
      if (va === null || vb === null) {
        if (va !== vb) {
          return va === null ? 1 : -1;  // missing values last, either direction
        }
      } else {
        const c = compareValues(va, vb);
        if (c !== 0) {
          return c * dir;
        }
      }
      // Ties: by time, then path, so equal rows keep a steady order.
      return compareValues(a.image.taken || "\uffff", b.image.taken || "\uffff") ||
        compareValues(a.image.path, b.image.path);
    });
    const fragment = document.createDocumentFragment();
    for (const row of rows) {
      fragment.appendChild(row.tr);
    }
    this.body.appendChild(fragment);
    this.moveTabStop();
  }

  applyFilter() {
    const folder = this.folderSelect.value;
    const kind = this.kindSelect.value;
    const text = this.textInput.value.trim().toLowerCase();
    const active = Boolean(folder || kind || text);
    const visible = new Set();
    for (const row of this.order) {
      const shown = (!folder || row.image.folder === folder) && matchesKind(row, kind) &&
        (!text || row.text.includes(text));
      row.tr.hidden = !shown;
      if (shown) {
        visible.add(row.image.path);
      }
    }
    const total = this.order.length;
    this.count.textContent = active ? "(" + visible.size + " of " + total + ")" : "(" + total + ")";
    this.clearButton.hidden = !active;
    this.empty.hidden = visible.size > 0 || total === 0;
    if (active || this.filtered) {
      this.onFilter(active ? visible : null);  // the map restyles every marker: only on change
    }
    this.filtered = active;
    this.moveTabStop();
  }

  /** Keep exactly one visible row in the tab order: the selected one, else the first shown. */
  moveTabStop(row) {
    let target = row || this.rows.get(this.selected);
    if (!target || target.tr.hidden) {
      const first = this.body.querySelector("tr:not([hidden])");
      target = first ? this.rows.get(first.dataset.path) : null;
    }
    if (this.tabStop && this.tabStop !== target) {
      this.tabStop.tr.tabIndex = -1;
    }
    this.tabStop = target;
    if (target) {
      target.tr.tabIndex = 0;
    }
  }

  /** Highlight a photo's row; unless the click came from the table, scroll the table to it. */
  select(path, scroll) {
    const previous = this.rows.get(this.selected);
    if (previous) {
      previous.tr.classList.remove("selected");
      previous.tr.removeAttribute("aria-current");
    }
    this.selected = path;
    const row = this.rows.get(path);
    if (!row) {
      return;
    }
    row.tr.classList.add("selected");
    row.tr.setAttribute("aria-current", "true");
    this.moveTabStop(row);
    if (scroll && !row.tr.hidden) {
      // Scroll the table's own box only: the page (and the map being looked at) stays put.
      const box = this.box.getBoundingClientRect();
      const at = row.tr.getBoundingClientRect();
      this.box.scrollTop += at.top - box.top - (this.box.clientHeight - at.height) / 2;
    }
  }
}

function matchesKind(row, kind) {
  if (!kind) {
    return true;
  }
  if (kind === "invalid" || kind === "valid" || kind === "unchecked") {
    return row.status === kind;
  }
  return row.problems.includes(kind);
}
