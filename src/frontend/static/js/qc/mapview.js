// The flight map: a marker per GPS photo and a time-ordered path per folder, coloured per
// folder, with a legend. Everything is drawn on canvas (Leaflet's preferCanvas): a site's
// ~1,400 markers cost one canvas instead of 1,400 SVG elements, and markers that arrive live
// are added in batches, one per animation frame (main.js). Points and paths are vector
// layers, so they draw whether or not the background tiles load.

import { byId, clear, el } from "./dom.js";
import { byTakenThenPath, failures, hasGps, problemsOf, showNumber, showTime } from "./model.js";

const FIT = { padding: [24, 24], maxZoom: 19, animate: false };

function popupContent(image) {
  const box = el("div", {}, el("strong", {}, image.path));
  const lines = [
    image.taken ? "taken " + showTime(image.taken) : null,
    showNumber(image.lat, 6) + ", " + showNumber(image.lon, 6),
    image.alt !== null && image.alt !== undefined ? "altitude " + showNumber(image.alt, 1) + " m"
      : null,
    image.camera,
  ];
  for (const problem of problemsOf(image)) {
    lines.push(problem.label + ": " + problem.message);
  }
  for (const line of lines) {
    if (line) {
      box.appendChild(el("br"));
      box.appendChild(document.createTextNode(line));
    }
  }
  return box;
}

export class MapView {
  constructor({ palette, onSelect, onLegend }) {
    this.el = byId("map");
    this.palette = palette;
    this.onSelect = onSelect;
    this.onLegend = onLegend;
    this.entries = new Map();  // path -> {marker, image}
    this.folders = new Map();  // folder -> {paths: Set, line: L.Polyline | null}
    this.dirty = new Set();  // folders whose path must be redrawn
    this.selected = null;
    this.visible = null;  // paths the table's filters leave, or null: no filter
    this.userMoved = false;  // once the user pans or zooms, the map stops fitting itself
    this.hasView = false;  // Leaflet has no bounds to ask for until the first fit
    this.map = null;
    if (typeof window.L === "undefined") {
      const note = byId("map-empty");
      note.textContent = "The map library did not load, so the map cannot be drawn.";
      note.hidden = false;
      this.el.hidden = true;
      return;
    }
    this.create();
  }

  create() {
    // Clicks within a few pixels of a marker hit it: the markers are small.
    this.map = L.map(this.el, { preferCanvas: true, renderer: L.canvas({ tolerance: 4 }) });
    // Paths live in their own pane under the markers' (overlayPane, z-index 400).
    this.map.createPane("paths").style.zIndex = "390";
    this.pathRenderer = L.canvas({ pane: "paths" });
    this.markers = L.layerGroup().addTo(this.map);
    this.popup = L.popup({ autoPanPadding: [24, 24] });
    for (const kind of ["mousedown", "wheel", "touchstart", "keydown"]) {
      this.el.addEventListener(kind, () => { this.userMoved = true; }, { passive: true });
    }
    this.addTiles();
  }

  addTiles() {
    const url = this.el.dataset.tileUrl;
    const note = byId("map-note");
    if (!url) {
      note.hidden = false;
      return;
    }
    const tiles = L.tileLayer(url, { maxZoom: 19, attribution: this.el.dataset.tileAttribution });
    tiles.on("tileerror", () => { note.hidden = false; });
    tiles.addTo(this.map);
  }

  styleOf(entry) {
    const image = entry.image;
    const colour = this.palette.colour(image.folder);
    const failed = failures(image).length > 0;
    const shown = this.visible === null || this.visible.has(image.path);
    if (image.path === this.selected) {
      return { radius: 8, color: "#111", weight: 3, fillColor: colour, fillOpacity: 1, opacity: 1 };
    }
    return {
      radius: failed ? 5 : 4,
      color: failed ? "#c62828" : colour,  // failing photos get a red ring
      weight: failed ? 2 : 1,
      fillColor: colour,
      fillOpacity: shown ? 0.9 : 0.12,
      opacity: shown ? 1 : 0.15,
    };
  }

  /** Add or update photos (a batch); those without a position are left off the map. */
  update(images) {
    if (!this.map) {
      return;
    }
    const fresh = [];
    for (const image of images) {
      const entry = this.entries.get(image.path);
      if (!hasGps(image) || image.error) {
        if (entry) {
          this.drop(image.path);
        }
        continue;
      }
      if (entry) {
        const moved = entry.image.lat !== image.lat || entry.image.lon !== image.lon;
        entry.image = image;
        if (moved) {
          entry.marker.setLatLng([image.lat, image.lon]);
        }
        entry.marker.setStyle(this.styleOf(entry));
      } else {
        this.add(image);
        fresh.push(image);
      }
      this.dirty.add(image.folder);
    }
    this.redrawPaths();
    this.fitNew(fresh);
  }

  /** Show exactly these photos (the result document): new ones added, missing ones removed. */
  replace(images) {
    if (!this.map) {
      return;
    }
    const keep = new Set(images.map((image) => image.path));
    for (const path of Array.from(this.entries.keys())) {
      if (!keep.has(path)) {
        this.drop(path);
      }
    }
    this.update(images);
    const empty = this.entries.size === 0;
    byId("map-empty").hidden = !empty;
    this.el.hidden = empty;
    this.renderLegend();
    this.fit();
  }

  add(image) {
    const entry = { image, marker: null };
    entry.marker = L.circleMarker([image.lat, image.lon], this.styleOf(entry));
    entry.marker.on("click", () => this.onSelect(entry.image.path, "map"));
    this.entries.set(image.path, entry);
    this.folderOf(image.folder).paths.add(image.path);
    this.markers.addLayer(entry.marker);
  }

  drop(path) {
    const entry = this.entries.get(path);
    this.markers.removeLayer(entry.marker);
    this.entries.delete(path);
    this.folderOf(entry.image.folder).paths.delete(path);
    this.dirty.add(entry.image.folder);
  }

  folderOf(name) {
    if (!this.folders.has(name)) {
      this.folders.set(name, { paths: new Set(), line: null });
    }
    return this.folders.get(name);
  }

  redrawPaths() {
    for (const name of this.dirty) {
      const folder = this.folderOf(name);
      const points = Array.from(folder.paths, (path) => this.entries.get(path).image)
        .sort(byTakenThenPath)
        .map((image) => [image.lat, image.lon]);
      if (points.length === 0) {
        if (folder.line) {
          folder.line.remove();
          folder.line = null;
        }
        continue;
      }
      const style = { color: this.palette.colour(name), weight: 2, opacity: 0.8 };
      if (folder.line) {
        folder.line.setLatLngs(points);
        folder.line.setStyle(style);
      } else {
        folder.line = L.polyline(points, { ...style, renderer: this.pathRenderer, interactive: false })
          .addTo(this.map);
      }
    }
    this.dirty.clear();
  }

  /** Colours changed (the document's folder order): restyle everything. */
  recolour() {
    if (!this.map) {
      return;
    }
    for (const entry of this.entries.values()) {
      entry.marker.setStyle(this.styleOf(entry));
    }
    for (const name of this.folders.keys()) {
      this.dirty.add(name);
    }
    this.redrawPaths();
    this.renderLegend();
  }

  bounds() {
    const bounds = L.latLngBounds([]);
    for (const entry of this.entries.values()) {
      bounds.extend([entry.image.lat, entry.image.lon]);
    }
    return bounds;
  }

  fit() {
    if (this.entries.size > 0 && !this.userMoved) {
      this.map.fitBounds(this.bounds(), FIT);
      this.hasView = true;
    }
  }

  /** While points arrive, keep them all in view (until the user takes over the map). */
  fitNew(fresh) {
    if (fresh.length === 0 || this.userMoved) {
      return;
    }
    const view = this.hasView ? this.map.getBounds() : null;
    if (view === null || fresh.some((image) => !view.contains([image.lat, image.lon]))) {
      this.fit();
    }
    this.renderLegend();
  }

  renderLegend() {
    const legend = byId("legend");
    clear(legend);
    // In the palette's order: the document's folder order once it is in.
    const order = new Map(this.palette.folders().map((name, i) => [name, i]));
    const rank = (name) => order.get(name) ?? order.size;
    const names = Array.from(this.folders.keys()).sort((a, b) => rank(a) - rank(b));
    for (const name of names) {
      const folder = this.folders.get(name);
      if (folder.paths.size === 0) {
        continue;
      }
      const button = el("button", { type: "button", class: "legend-item", title: "Show only " + name },
        el("span", { class: this.palette.swatchClass(name) }), name + " (" + folder.paths.size + ")");
      button.addEventListener("click", () => this.onLegend(name));
      legend.appendChild(el("li", {}, button));
    }
  }

  /** Highlight a photo's marker; unless it was clicked on the map, open a popup on it. */
  select(path, openPopup) {
    if (!this.map) {
      return;
    }
    const previous = this.entries.get(this.selected);
    this.selected = path;
    if (previous) {
      previous.marker.setStyle(this.styleOf(previous));
    }
    const entry = this.entries.get(path);
    if (!entry) {
      this.map.closePopup();
      return;
    }
    entry.marker.setStyle(this.styleOf(entry));
    entry.marker.bringToFront();
    if (openPopup) {
      // Chosen elsewhere (table, profile, gaps): point it out; the popup pans the map to it.
      this.popup.setLatLng(entry.marker.getLatLng()).setContent(popupContent(entry.image));
      this.popup.openOn(this.map);
    } else {
      this.map.closePopup();  // clicked on the map: the preview beside it says which photo
    }
  }

  /** Fade the markers the table's filters hide (null: show all). */
  filter(visible) {
    this.visible = visible;
    if (!this.map) {
      return;
    }
    for (const entry of this.entries.values()) {
      entry.marker.setStyle(this.styleOf(entry));
    }
  }
}
