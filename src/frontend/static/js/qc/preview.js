// The preview pane: the selected photo, small (the server sends a downscaled JPEG made from
// the embedded preview, never the original file), with its name, time, position and problems.

import { byId, clear, el, tag } from "./dom.js";
import { problemsOf, showBytes, showNumber, showTime } from "./model.js";

export class PreviewPane {
  constructor({ previewUrl }) {
    this.url = previewUrl;
    this.empty = byId("preview-empty");
    this.body = byId("preview-body");
    this.img = byId("preview-img");
    this.loading = byId("preview-loading");
    this.error = byId("preview-error");
    this.name = byId("preview-name");
    this.facts = byId("preview-facts");
    this.failures = byId("preview-failures");
    this.path = null;
    this.img.addEventListener("load", () => {
      this.loading.hidden = true;
      this.img.hidden = false;
    });
    this.img.addEventListener("error", () => this.failed(this.path, this.img.src));
  }

  /** Show a photo; ``image`` may be updated later (the checks' verdicts) without a reload. */
  show(image) {
    this.empty.hidden = true;
    this.body.hidden = false;
    this.describe(image);
    if (image.path === this.path) {
      return;
    }
    this.path = image.path;
    const src = this.url + "?" + new URLSearchParams({ path: image.path, size: "large" });
    this.error.hidden = true;
    this.loading.hidden = false;
    this.img.hidden = true;
    this.img.alt = "Preview of " + image.path;
    this.img.src = src;
  }

  describe(image) {
    this.name.textContent = image.path;
    clear(this.facts);
    const facts = [
      ["Taken", showTime(image.taken) || "unknown"],
      ["Position", image.lat === null || image.lat === undefined ? "none"
        : showNumber(image.lat, 6) + ", " + showNumber(image.lon, 6)],
      ["Altitude", image.alt === null || image.alt === undefined ? "unknown"
        : showNumber(image.alt, 1) + " m"],
      ["Camera", image.camera || ""],
      ["Size", showBytes(image.size)],
      ["Checked on", image.checks ? (image.checks.source === "preview"
        ? "the embedded preview" : "the whole file") : ""],
    ];
    for (const [label, value] of facts) {
      if (value) {
        this.facts.append(el("dt", {}, label), el("dd", {}, value));
      }
    }
    clear(this.failures);
    const problems = problemsOf(image);
    for (const problem of problems) {
      this.failures.appendChild(el("li", {}, tag(problem), " " + problem.message));
    }
    if (problems.length === 0 && image.checks) {
      this.failures.appendChild(el("li", {}, tag({ label: "passed", tone: "good", message: "" }),
        " every check passed"));
    }
  }

  /** The image did not load: ask the same URL again for the server's reason (a JSON error). */
  failed(path, src) {
    if (path !== this.path || !src) {
      return;
    }
    fetch(src, { headers: { Accept: "application/json" } })
      .then((response) => response.json().catch(() => ({})).then((body) => ({ response, body })))
      .then(({ response, body }) => {
        const reason = body.message || (response.ok ? "the preview could not be shown"
          : "the server answered " + response.status);
        this.complain(path, reason);
      })
      .catch((err) => this.complain(path, err.message));
  }

  complain(path, reason) {
    if (path !== this.path) {
      return;  // another photo was chosen meanwhile
    }
    this.loading.hidden = true;
    this.img.hidden = true;
    this.error.textContent = "No preview of this photo: " + reason + ".";
    this.error.hidden = false;
  }
}
