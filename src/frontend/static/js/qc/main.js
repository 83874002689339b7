// The QC page of one job, from the first header read to the finished review.
//
// While the job runs, its events (feed.js) drive the page: each photo read becomes a marker
// and a table row (batched per animation frame), progress updates the progress card, and each
// stage that publishes results (GPS pass done, checks done) makes the page fetch the result
// document, which then replaces the live rows. A page opened after the end fetches the
// document once. Either way the review is drawn from the document by the same code.
//
// The page leads with the decision: the verdict banner and the re-fly list come from the
// document's `verdict`, and every badge, filter and count renders it; nothing here judges a
// photo or counts one again. While the job runs, the banner says it is checking.

import { Palette } from "./colours.js";
import { byId } from "./dom.js";
import { openFeed } from "./feed.js";
import { getJson } from "./http.js";
import { MapView } from "./mapview.js";
import { byFolderName, folderOf, Kinds } from "./model.js";
import { PreviewPane } from "./preview.js";
import { AltitudeProfile } from "./profile.js";
import { ProgressView } from "./progress.js";
import { renderDetails, renderExports, renderFolders, renderStructure } from "./summary.js";
import { ImageTable } from "./table.js";
import { VerdictView } from "./verdict.js";

const PROFILE_LIVE_MS = 500;  // the live altitude profile is redrawn at most this often
const RETRY_MS = 3000;
const MAX_RETRIES = 5;

// How far the job's published results go: 0 nothing, 1 the GPS result (checks to come),
// 2 final (checks done, failed, cancelled or off). The page fetches the document when the
// job is further along than the document it has.
function rankOf(state) {
  if (!state.scan_ready) {
    return 0;
  }
  return state.checks_state === "waiting" || state.checks_state === "running" ? 1 : 2;
}

function stageOf(job) {
  if (job.checks_state === "waiting" || job.checks_state === "running") {
    return "gps";
  }
  return job.result && job.result.check_stats ? "checked" : "nochecks";
}

class QcPage {
  constructor(root) {
    this.root = root;
    this.data = root.dataset;
    this.images = new Map();  // path -> image: live events first, then the document's
    this.doc = null;
    this.docRank = 0;  // the rank of the document shown (0: none)
    this.wantRank = 0;  // the highest rank the job has reached, as far as the page heard
    this.loading = false;
    this.retries = 0;
    this.ended = false;
    this.selected = null;
    this.pending = [];  // live photos waiting for the next frame
    this.frame = 0;
    this.profileTimer = 0;
    this.kinds = new Kinds([]);

    const select = (path, from) => this.select(path, from);
    this.palette = new Palette();
    this.progress = new ProgressView({
      cancelUrl: this.data.cancelUrl,
      csrfToken: document.querySelector('meta[name="csrf-token"]').content,
      palette: this.palette,
    });
    this.map = new MapView({
      palette: this.palette, onSelect: select, onLegend: (folder) => this.table.setFolder(folder),
    });
    this.table = new ImageTable({
      palette: this.palette, onSelect: select, onFilter: (visible) => this.map.filter(visible),
    });
    this.preview = new PreviewPane({ previewUrl: this.data.previewUrl });
    this.profile = new AltitudeProfile({ palette: this.palette, onSelect: select });
    this.verdict = new VerdictView({
      kinds: new Kinds([]),
      onRefly: (item) => {
        this.table.filterTo(item.folder, "invalid");
        // The filtered photos are below the fold: bring them into view, the map with them.
        byId("images-card").scrollIntoView({ behavior: "smooth", block: "start" });
      },
    });
  }

  start() {
    if (this.data.state !== "running") {
      this.load();  // the job is over: its document (or its error) is all there is
      return;
    }
    this.verdict.checking("The verdict comes when the photo checks end.");
    if (this.data.scanReady === "true") {
      this.want(1);
    }
    this.feed = openFeed({
      eventsUrl: this.data.eventsUrl,
      stateUrl: this.data.stateUrl,
      onState: (state) => this.onState(state),
      onEvent: (kind, data) => this.onEvent(kind, data),
      onTrouble: (message) => this.progress.complain(message),
    });
  }

  onState(state) {
    if (this.ended) {
      return;
    }
    if (state.state === "running") {
      this.progress.show(state);
    }
    this.want(rankOf(state));
    if (state.state !== "running") {
      this.finish(state);
    }
  }

  onEvent(kind, data) {
    if (kind === "image") {
      this.queue(data);
    } else if (kind === "scan") {
      this.want(1);
    } else if (kind === "checks") {
      this.want(2);
    } else if (kind === "checked") {
      this.table.measured(data.path);
    }
  }

  // -- live photos ---------------------------------------------------------------------------

  queue(image) {
    if (this.doc) {
      return;  // the document has every photo already (a resumed stream replays old events)
    }
    image.folder = image.folder || folderOf(image.path);
    this.pending.push(image);
    if (!this.frame) {
      this.frame = window.requestAnimationFrame(() => this.flush());
    }
  }

  flush() {
    this.frame = 0;
    const batch = this.pending;
    this.pending = [];
    if (this.doc || batch.length === 0) {
      return;
    }
    for (const image of batch) {
      this.images.set(image.path, image);
    }
    this.palette.assign(batch.map((image) => image.folder));
    this.map.update(batch);
    this.table.update(batch);
    if (!this.profileTimer) {
      this.profileTimer = window.setTimeout(() => {
        this.profileTimer = 0;
        if (!this.doc) {
          this.profile.draw(Array.from(this.images.values()));
        }
      }, PROFILE_LIVE_MS);
    }
  }

  // -- the result document -------------------------------------------------------------------

  want(rank) {
    this.wantRank = Math.max(this.wantRank, rank);
    if (!this.loading && this.wantRank > this.docRank) {
      this.load();
    }
  }

  load() {
    this.loading = true;
    getJson(this.data.resultUrl)
      .then((job) => {
        this.loading = false;
        this.retries = 0;
        byId("load-error").hidden = true;
        if (job === null) {
          return;
        }
        this.docRank = rankOf(job);
        this.show(job);
        if (job.state !== "running") {
          this.finish(job);
        }
        if (this.wantRank > this.docRank) {
          this.load();  // the job moved on while this document was on its way
        }
      })
      .catch((err) => {
        this.loading = false;
        const note = byId("load-error");
        note.textContent = "Cannot load the results (" + err.message + ")" +
          (this.retries < MAX_RETRIES ? "; trying again." : ". Reload the page to try again.");
        note.hidden = false;
        if (this.retries < MAX_RETRIES) {
          this.retries += 1;
          window.setTimeout(() => this.load(), RETRY_MS);
        }
      });
  }

  show(job) {
    const doc = job.result;
    if (!doc) {
      return;
    }
    this.doc = doc;
    this.pending = [];
    for (const image of doc.images) {
      image.folder = folderOf(image.path);
    }
    this.images = new Map(doc.images.map((image) => [image.path, image]));
    // Folders in alphabetical order take the colours, as they will on a reload of this page.
    this.palette.reset(doc.folders.map((folder) => folder.name).sort(byFolderName));
    const kinds = doc.verdict ? new Kinds(doc.verdict.kinds, doc.verdict.folder_reasons)
      : new Kinds([]);
    this.kinds = kinds;
    this.table.setStage(stageOf(job));
    this.table.setKinds(kinds, doc.verdict ? doc.verdict.reasons : []);
    this.table.replace(doc.images);
    this.map.setDocument(doc, kinds);
    this.map.replace(doc.images);
    this.preview.setKinds(kinds);
    this.profile.setDocument(doc);
    if (rankOf(job) === 2 && doc.verdict) {
      // The checks are over (done, failed, cancelled or off): this verdict is the job's,
      // even if the job itself was still closing when the document was made.
      this.verdict.show(doc.verdict, kinds);
    } else {
      this.verdict.checking("Every photo is read; the verdict comes when the photo checks end.");
    }
    renderFolders(doc, this.palette, kinds);
    renderStructure(doc);
    renderDetails(doc);
    this.showChecksState(job);
    if (this.selected && this.images.has(this.selected)) {
      this.select(this.selected, "document");
    }
  }

  showChecksState(job) {
    const error = byId("checks-error");
    error.hidden = job.checks_state !== "failed";
    error.textContent = "The photo checks failed: " + (job.checks_error || "unknown error") +
      ". The GPS results below are complete.";
    byId("checks-cancelled").hidden = job.checks_state !== "cancelled";
  }

  /** The job ended: the progress goes, and what is final is offered. */
  finish(state) {
    if (this.ended) {
      return;
    }
    this.ended = true;
    if (this.feed) {
      this.feed.stop();
    }
    this.progress.end();
    byId("rescan").hidden = false;
    this.showChecksState(state);
    if (!state.scan_ready) {
      byId("ended-title").textContent =
        state.state === "failed" ? "The scan failed" : "The scan was cancelled";
      const error = byId("ended-error");
      error.textContent = state.error || (state.state === "failed" ? "unknown error" : "");
      error.hidden = !error.textContent;
      byId("ended").hidden = false;
      for (const id of ["review", "images-card", "verdict"]) {
        byId(id).hidden = true;  // nothing to review
      }
    } else if (this.doc && this.doc.verdict && this.docRank >= rankOf(state)) {
      // The document shown is already the final one: its verdict is the job's.
      this.verdict.show(this.doc.verdict, this.kinds);
    }
    renderExports(this.data.exportUrl, state.state === "done" && state.scan_ready);
  }

  // -- selection: map, table, profile and preview follow each other ---------------------------

  select(path, from) {
    const image = this.images.get(path);
    if (!image) {
      return;
    }
    this.selected = path;
    const again = from === "document";  // new verdicts for the photo already shown
    this.table.select(path, !again && from !== "table");
    this.map.select(path, !again && from !== "map");
    this.profile.select(path);
    this.preview.show(image);
    if (from === "table") {
      // A row far down the table: bring its preview (beside the map, above) into view.
      byId("preview").scrollIntoView({ block: "nearest" });
    }
  }
}

const root = byId("qc");
if (root) {
  new QcPage(root).start();
}
