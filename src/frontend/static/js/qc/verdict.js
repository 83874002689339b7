// The decision at the top of the page: the verdict banner and the list of what to fly again.
// Both render the document's `verdict` (domain/verdict.py) as it is: the page counts nothing
// and judges nothing itself, so its numbers are the report's, the exports' and the CLI's.

import { byId, clear, el } from "./dom.js";

const CHECKING = "Checking…";

function count(value, label, tone) {
  return el("li", { class: "count" + (tone ? " " + tone : "") },
    el("span", { class: "value" }, String(value)), el("span", { class: "label" }, label));
}

/** The headline after its label, as a sentence. */
function sentence(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export class VerdictView {
  constructor({ kinds, onRefly }) {
    this.card = byId("verdict");
    this.kinds = kinds;
    this.onRefly = onRefly;
  }

  /** While the job runs: no decision yet, and nothing on the page pretends to one. */
  checking(what) {
    this.card.dataset.decision = "checking";
    byId("verdict-decision").textContent = CHECKING;
    byId("verdict-headline").textContent = what;
    for (const id of ["verdict-counts", "verdict-reasons", "verdict-notes"]) {
      clear(byId(id));
    }
    byId("refly").hidden = true;
    this.card.hidden = false;
  }

  /** The job's verdict, once it has one that is final. */
  show(verdict, kinds) {
    this.kinds = kinds;
    this.card.dataset.decision = verdict.decision;
    byId("verdict-decision").textContent = verdict.label;
    byId("verdict-headline").textContent = sentence(verdict.detail);
    const photos = verdict.photos;
    const counts = byId("verdict-counts");
    clear(counts);
    counts.append(
      count(photos.total, "photos"),
      count(photos.valid, "valid", photos.valid ? "good" : ""),
      count(photos.invalid, "invalid", photos.invalid ? "bad" : ""),
      count(photos.unchecked, "not judged", photos.unchecked ? "warn" : ""),
    );
    const reasons = byId("verdict-reasons");
    clear(reasons);
    for (const reason of verdict.reasons) {
      reasons.append(el("span", { class: "tag bad", "data-kind": reason.kind },
        reason.label + " " + reason.count), " ");
    }
    const notes = byId("verdict-notes");
    clear(notes);
    for (const note of verdict.notes) {
      notes.append(el("li", {}, note));
    }
    this.card.hidden = false;
    this.showRefly(verdict.refly);
  }

  showRefly(items) {
    const card = byId("refly");
    const list = byId("refly-list");
    clear(list);
    for (const item of items) {
      const reasons = item.reasons.map((key) => this.kinds.label(key)).join(", ");
      const photos = item.photos.length;
      const what = photos ? photos + (photos === 1 ? " photo" : " photos") : "";
      const name = photos
        ? el("button", { type: "button", class: "link refly-folder", "data-folder": item.folder,
          title: "Show these photos on the map and in the table" }, item.folder)
        : el("strong", { class: "refly-folder" }, item.folder);
      if (photos) {
        name.addEventListener("click", () => this.onRefly(item));
      }
      list.append(el("li", { "data-folder": item.folder }, name,
        el("span", { class: "refly-what" }, [what, reasons, item.note || ""]
          .filter(Boolean).join(" · "))));
    }
    byId("refly-count").textContent = items.length ? "(" + items.length +
      (items.length === 1 ? " folder)" : " folders)") : "";
    card.hidden = items.length === 0;
  }
}
