// The preview pane: the selected photo, small (the server sends a downscaled JPEG made from
// the embedded preview, never the original file), with its name, time, position and problems.

import { byId, clear, el } from "./dom.js";
import { Kinds, messagesOf, showBytes, showNumber, showTime } from "./model.js";

// What the checks read of a photo: its `checks.source` (docs/checks.md).
const CHECKED_ON = {
  preview: "the embedded preview",
  band: "its top rows, EXIF thumbnail and end (no preview)",
  full: "the whole file",
};

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
    this.kinds = new Kinds([]);
    this.img.addEventListener("load", () => {
      this.loading.hidden = true;
      this.img.hidden = false;
    });
    this.img.addEventListener("error", () => this.failed(this.path, this.img.src));
  }

  /** The verdict's names of the reasons a photo is invalid. */
  setKinds(kinds) {
    this.kinds = kinds;
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
      ["Checked on", image.checks ? (CHECKED_ON[image.checks.source] || "") : ""],
    ];
    for (const [label, value] of facts) {
      if (value) {
        this.facts.append(el("dt", {}, label), el("dd", {}, value));
      }
    }
    clear(this.failures);
    const problems = image.problems || [];
    if (problems.length) {
      this.failures.appendChild(el("li", { class: "badges" }, problems.map((key) => [
        el("span", { class: "tag bad", "data-kind": key }, this.kinds.label(key)), " "])));
      for (const message of messagesOf(image)) {
        this.failures.appendChild(el("li", {}, message));
      }
    } else if (image.valid === true) {
      this.failures.appendChild(el("li", {}, el("span", { class: "tag good" }, "valid"),
        " every check passed"));
    } else if (image.valid === null) {
      this.failures.appendChild(el("li", {}, el("span", { class: "tag warn" }, "not judged"),
        " the photo checks did not judge this photo"));
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
