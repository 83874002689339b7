// The progress card of a running job: which pass runs (GPS headers, then the photo checks),
// count, rate and ETA, the GPS pass's per-folder counts, and the cancel button. The card goes
// away when the job ends; the review below it has been filling in meanwhile.

import { byId, clear, el } from "./dom.js";
import { byFolderName, showDuration } from "./model.js";

export class ProgressView {
  constructor({ cancelUrl, csrfToken, palette }) {
    this.card = byId("progress");
    this.palette = palette;
    if (!this.card) {
      return;  // the job had ended when the page was made
    }
    this.title = byId("progress-title");
    this.bar = byId("progress-bar");
    this.text = byId("progress-text");
    this.folders = byId("progress-folders");
    this.problem = byId("progress-error");
    this.cancel = byId("cancel");
    this.cancel.addEventListener("click", () => this.requestCancel(cancelUrl, csrfToken));
    this.cancel.disabled = false;  // the page makes it disabled: it does nothing until now
  }

  show(state) {
    if (!this.card) {
      return;
    }
    const checking = state.scan_ready;
    const pass = checking ? state.checks : state.gps;
    this.title.textContent = state.waiting
      ? "Waiting for " + state.waiting + "…"
      : checking
        ? "Checking the photos (blur, exposure, duplicates, position, integrity)…"
        : "Reading photo headers…";
    this.cancel.textContent = checking ? "Cancel the checks" : "Cancel";
    this.bar.max = pass.total || 1;
    this.bar.value = pass.done;
    // No "0 of ?": until the pass knows its total, it says what it is doing.
    let line = !pass.total ? (checking ? "Starting the checks…" : "Listing the folders…")
      : pass.done + " of " + pass.total +
        (checking ? " photos checked" : " images, " + state.gps_points + " GPS points");
    if (pass.total && pass.rate > 0) {
      line += " · " + pass.rate.toFixed(1) + "/s · about " + showDuration(pass.eta_s) + " left";
    }
    this.text.textContent = line;
    this.showFolders(state.folders || {}, checking);
  }

  showFolders(folders, checking) {
    const names = Object.keys(folders).sort(byFolderName);
    this.folders.hidden = checking || names.length === 0;
    if (this.folders.hidden) {
      return;
    }
    this.palette.assign(names);
    const body = this.folders.tBodies[0];
    clear(body);
    for (const name of names) {
      const counts = folders[name];
      body.appendChild(el("tr", { "data-folder": name },
        el("td", {}, el("span", { class: this.palette.swatchClass(name) }), name),
        el("td", { class: "num" }, counts.done + " / " + (counts.total || "?")),
        el("td", { class: "num" }, String(counts.gps_points))));
    }
  }

  complain(message) {
    if (!this.card) {
      return;
    }
    this.problem.textContent = message || "";
    this.problem.hidden = !message;
  }

  /** The job ended: the card goes (the review and the notes above it say how it ended). */
  end() {
    if (this.card) {
      this.card.remove();
      this.card = null;
    }
  }

  requestCancel(url, token) {
    this.cancel.disabled = true;
    this.cancel.textContent = "Cancelling…";
    fetch(url, { method: "POST", headers: { "X-CSRFToken": token, Accept: "application/json" } })
      .then((response) => {
        if (!response.ok) {
          throw new Error("the server answered " + response.status);
        }
      })
      .catch((err) => {
        this.cancel.disabled = false;
        this.cancel.textContent = "Cancel";
        this.complain("Cannot cancel (" + err.message + ").");
      });
  }
}
