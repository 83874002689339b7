// The flight map: a marker per GPS photo and a time-ordered path per folder, coloured per
// folder, with a legend. Everything is drawn on canvas (Leaflet's preferCanvas): a site's
// ~1,400 markers cost one canvas instead of 1,400 SVG elements, and markers that arrive live
// are added in batches, one per animation frame (main.js). Points and paths are vector
// layers, so they draw whether or not the background tiles load.
//
// The first view fits the site: the photos within the position check's distance of the site's
// centre (the document's `site_area`). A photo taken kilometres away would otherwise shrink the
// site to a dot; such photos are listed beside the map instead, each with a button that shows
// it, and a "zoom to site" control brings the site back.
//
// Coverage (the document's `coverage`, judged in domain/coverage.py): the tower, each orbit's
// ring (radius from `site_area.rings`) with its holes drawn over it in red, and a short line
// per photo where its camera looked (red for a photo aimed away from the tower). These few
// shapes are SVG (class names: tower-marker, orbit-ring, orbit-gap, aim-line); listed below
// the map too.

import { byId, clear, el } from "./dom.js";
import {
  byFolderName, byTakenThenPath, hasGps, Kinds, messagesOf, showNumber, showTime,
} from "./model.js";

const FIT = { padding: [24, 24], maxZoom: 19, animate: false };
const SHOW_ZOOM = 17;  // a far photo shown on its own: close enough to see where it is
const AIM_M = 6;  // length of a photo's camera line
const M_PER_DEG = 111320;

/** The point ``metres`` from (lat, lon) on a bearing (flat earth: fine across a site). */
function destination(lat, lon, metres, bearing) {
  const rad = (bearing * Math.PI) / 180;
  return [lat + (metres * Math.cos(rad)) / M_PER_DEG,
    lon + (metres * Math.sin(rad)) / (M_PER_DEG * Math.cos((lat * Math.PI) / 180))];
}

/** Points along the circle of ``radius`` around (lat, lon), clockwise from one azimuth to another. */
function arc(lat, lon, radius, from, to) {
  const width = ((to - from) % 360 + 360) % 360 || 360;
  const steps = Math.max(2, Math.ceil(width / 3));
  const points = [];
  for (let i = 0; i <= steps; i += 1) {
    points.push(destination(lat, lon, radius, from + (width * i) / steps));
  }
  return points;
}

function showDeg(value) {
  return showNumber(value, 0) + "°";
}

function showDistance(metres) {
  return metres >= 1000 ? (metres / 1000).toFixed(1) + " km" : Math.round(metres) + " m";
}

function popupContent(image, kinds) {
  const box = el("div", {}, el("strong", {}, image.path));
  const lines = [
    image.taken ? "taken " + showTime(image.taken) : null,
    showNumber(image.lat, 6) + ", " + showNumber(image.lon, 6),
    image.alt !== null && image.alt !== undefined ? "altitude " + showNumber(image.alt, 1) + " m"
      : null,
    image.camera,
  ];
  const problems = (image.problems || []).map((key) => kinds.label(key));
  if (problems.length) {
    lines.push("Invalid: " + problems.join(", "));
  }
  lines.push(...messagesOf(image));
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
    this.kinds = new Kinds([]);
    this.area = null;  // the document's site_area
    this.coverage = null;  // the document's coverage
    this.outside = new Map();  // path -> metres from the site's centre: left out of the site's view
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
    this.coverageRenderer = L.svg({ pane: "paths" });
    this.coverageLayer = L.layerGroup().addTo(this.map);
    this.popup = L.popup({ autoPanPadding: [24, 24] });
    for (const kind of ["mousedown", "wheel", "touchstart", "keydown"]) {
      this.el.addEventListener(kind, () => { this.userMoved = true; }, { passive: true });
    }
    this.addTiles();
    this.addSiteControl();
  }

  /** A button under the zoom buttons that fits the site again, wherever the map was moved. */
  addSiteControl() {
    const SiteControl = L.Control.extend({
      options: { position: "topleft" },
      onAdd: () => {
        const bar = L.DomUtil.create("div", "leaflet-bar leaflet-control");
        const button = L.DomUtil.create("button", "map-site", bar);
        button.type = "button";
        button.textContent = "Site";
        button.title = "Zoom to site";
        button.setAttribute("aria-label", "Zoom to site");
        L.DomEvent.disableClickPropagation(bar);
        button.addEventListener("click", () => this.fitSite());
        return bar;
      },
    });
    new SiteControl().addTo(this.map);
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
    const failed = image.valid === false;
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
    this.renderFar();
    this.renderCoverage(images);
    this.fit();
  }

  /** The tower, the orbit rings with their holes, and where each photo's camera looked. */
  renderCoverage(images) {
    const coverage = this.coverage;
    const box = byId("coverage");
    this.coverageLayer.clearLayers();
    if (!coverage || !coverage.tower) {
      box.hidden = true;
      return;
    }
    const { lat, lon } = coverage.tower;
    const svgOnly = { renderer: this.coverageRenderer, interactive: false };
    const rings = (this.area && this.area.rings) || [];
    coverage.orbits.forEach((orbit, i) => {
      const radius = rings[i] ? rings[i].radius_m : null;
      if (!radius) {
        return;
      }
      L.circle([lat, lon], { ...svgOnly, radius, color: "#455a64", weight: 1, fill: false,
        dashArray: "4 3", className: "orbit-ring" }).addTo(this.coverageLayer);
      for (const gap of orbit.gaps) {
        L.polyline(arc(lat, lon, radius, gap.from_deg, gap.to_deg), { ...svgOnly,
          color: "#c62828", weight: 5, opacity: 0.85, className: "orbit-gap" })
          .addTo(this.coverageLayer);
      }
    });
    const away = new Set(coverage.pointing_away.map((a) => a.path));
    for (const image of images) {
      const yaw = image.gimbal ? image.gimbal.yaw : null;
      if (!hasGps(image) || image.error || yaw === null || yaw === undefined) {
        continue;
      }
      const bad = away.has(image.path);
      L.polyline([[image.lat, image.lon], destination(image.lat, image.lon, AIM_M, yaw)], {
        renderer: this.pathRenderer, interactive: false, weight: bad ? 3 : 1,
        color: bad ? "#c62828" : "#37474f", opacity: bad ? 1 : 0.6,
      }).addTo(this.coverageLayer);
    }
    L.circleMarker([lat, lon], { ...svgOnly, radius: 7, color: "#111", weight: 2,
      fillColor: "#ffeb3b", fillOpacity: 1, className: "tower-marker" })
      .addTo(this.coverageLayer);
    byId("coverage-tower").textContent = "Tower " + showNumber(lat, 6) + ", " +
      showNumber(lon, 6) + (coverage.tower.source === "profile" ? " (from the site profile)"
        : " (estimated from the orbits)") + "; " + away.size + " photo" +
      (away.size === 1 ? "" : "s") + " aimed away from it.";
    const list = byId("coverage-orbits");
    clear(list);
    for (const orbit of coverage.orbits) {
      const height = orbit.altitude_m === null ? "unknown height" : showNumber(orbit.altitude_m, 0) + " m";
      const holes = orbit.gaps.map((g) => showDeg(g.from_deg) + " to " + showDeg(g.to_deg));
      list.appendChild(el("li", { class: holes.length ? "orbit has-gap" : "orbit" },
        orbit.folder + " at " + height + ": " + orbit.photos + " photos, largest gap " +
        showDeg(orbit.largest_gap_deg) + (holes.length ? "; holes " + holes.join(", ") : "")));
    }
    box.hidden = false;
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

  /** The site's photos (all of them when none is near the centre, or before it is known). */
  siteBounds() {
    const all = L.latLngBounds([]);
    const site = L.latLngBounds([]);
    for (const [path, entry] of this.entries) {
      const at = [entry.image.lat, entry.image.lon];
      all.extend(at);
      if (!this.outside.has(path)) {
        site.extend(at);
      }
    }
    return site.isValid() ? site : all;
  }

  /** The first view, and the view while photos arrive: unless the user has moved the map. */
  fit() {
    if (!this.userMoved) {
      this.fitSite();
    }
  }

  fitSite() {
    if (this.map && this.entries.size > 0) {
      this.map.fitBounds(this.siteBounds(), FIT);
      this.hasView = true;
    }
  }

  /** The document's kinds and site area (before ``replace``): reasons' names, far photos. */
  setDocument(doc, kinds) {
    this.kinds = kinds;
    this.area = doc.site_area || null;
    this.coverage = doc.coverage || null;
    const outside = this.area ? this.area.outside : [];
    this.outside = new Map(outside.map((far) => [far.path, far.distance_m]));
  }

  renderFar() {
    const area = this.area;
    const box = byId("far");
    if (!area) {
      box.hidden = true;
      return;
    }
    const list = byId("far-list");
    clear(list);
    const far = area.outside.filter((item) => this.entries.has(item.path));
    for (const item of far) {
      const button = el("button", { type: "button", class: "secondary small",
        "aria-label": "Show " + item.path + " on the map" }, "Show");
      button.addEventListener("click", () => this.showFar(item.path));
      list.appendChild(el("li", { "data-path": item.path },
        el("span", { class: "path" }, item.path), " ",
        el("span", { class: "muted" }, showDistance(item.distance_m)), " ", button));
    }
    byId("far-title").textContent = "Far from the site (" + far.length + ")";
    byId("far-note").textContent = "More than " + showDistance(area.outside_site_m) +
      " from the site's centre, so the map's first view leaves " +
      (far.length === 1 ? "it" : "them") + " out.";
    box.hidden = far.length === 0;
  }

  /** Zoom to one far photo and select it (its preview and popup follow). */
  showFar(path) {
    const entry = this.entries.get(path);
    if (!entry || !this.map) {
      return;
    }
    this.userMoved = true;
    this.map.setView([entry.image.lat, entry.image.lon], SHOW_ZOOM, { animate: false });
    this.onSelect(path, "far");
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
    const names = Array.from(this.folders.keys()).sort(byFolderName);
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
      this.popup.setLatLng(entry.marker.getLatLng()).setContent(popupContent(entry.image, this.kinds));
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
