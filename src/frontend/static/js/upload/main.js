// The results page of an uploaded ZIP: the QC page's banner, map and previews over the
// upload's result document (GET /api/uploads/<id>). The server has already rendered the
// banner, the re-fly list and the tables from that document; this draws the same banner with
// verdict.js (so the two pages cannot drift apart), the map with mapview.js and the previews
// with preview.js, and ties them to the photo table. Nothing here judges or counts a photo.

import { Palette } from "../qc/colours.js";
import { byId } from "../qc/dom.js";
import { getJson } from "../qc/http.js";
import { MapView } from "../qc/mapview.js";
import { byFolderName, folderOf, Kinds } from "../qc/model.js";
import { PreviewPane } from "../qc/preview.js";
import { VerdictView } from "../qc/verdict.js";

class UploadPage {
  constructor(root) {
    this.data = root.dataset;
    this.images = new Map();
    this.rows = new Map(Array.from(byId("photos").tBodies[0].rows, (tr) => [tr.dataset.path, tr]));
    this.selected = null;
    const select = (path, from) => this.select(path, from);
    this.palette = new Palette();
    this.map = new MapView({
      palette: this.palette,
      onSelect: select,
      onLegend: (folder) => this.only((path) => folderOf(path) === folder),
    });
    this.preview = new PreviewPane({ previewUrl: this.data.previewUrl });
    this.verdict = new VerdictView({
      kinds: new Kinds([]),
      onRefly: (item) => {
        const photos = new Set(item.photos);
        this.only((path) => photos.has(path));
      },
    });
    this.listen();
  }

  listen() {
    const body = byId("photos").tBodies[0];
    body.addEventListener("click", (event) => {
      const tr = event.target.closest("tr[data-path]");
      if (tr) {
        this.select(tr.dataset.path, "table");
      }
    });
    body.addEventListener("keydown", (event) => {
      const tr = event.target.closest("tr[data-path]");
      if (tr && (event.key === "Enter" || event.key === " ")) {
        event.preventDefault();
        this.select(tr.dataset.path, "table");
      }
    });
    byId("photos-all").addEventListener("click", () => this.only(null));
  }

  start() {
    getJson(this.data.resultUrl)
      .then((upload) => {
        if (upload && upload.result) {
          this.show(upload.result);
        }
      })
      .catch((err) => {
        const note = byId("load-error");
        note.textContent = "Cannot load the map and previews (" + err.message +
          "). Reload the page to try again.";
        note.hidden = false;
      });
  }

  show(doc) {
    for (const image of doc.images) {
      image.folder = folderOf(image.path);
    }
    this.images = new Map(doc.images.map((image) => [image.path, image]));
    this.palette.reset(doc.folders.map((folder) => folder.name).sort(byFolderName));
    const kinds = new Kinds(doc.verdict.kinds, doc.verdict.folder_reasons);
    this.verdict.show(doc.verdict, kinds);
    this.map.setDocument(doc, kinds);
    this.map.replace(doc.images);
    this.preview.setKinds(kinds);
  }

  /** Show only the photos ``keep`` accepts, on the map and in the table (null: all). */
  only(keep) {
    const visible = keep ? new Set(Array.from(this.rows.keys()).filter(keep)) : null;
    for (const [path, tr] of this.rows) {
      tr.hidden = visible !== null && !visible.has(path);
    }
    this.map.filter(visible);
    byId("photos-all").hidden = visible === null;
  }

  select(path, from) {
    const image = this.images.get(path);
    if (!image) {
      return;
    }
    const previous = this.rows.get(this.selected);
    if (previous) {
      previous.classList.remove("selected");
    }
    this.selected = path;
    const row = this.rows.get(path);
    if (row) {
      row.classList.add("selected");
    }
    this.map.select(path, from !== "map");
    this.preview.show(image);
    if (from === "table") {
      byId("preview").scrollIntoView({ block: "nearest" });
    }
  }
}

const root = byId("upload");
if (root && byId("verdict")) {
  new UploadPage(root).start();
}
