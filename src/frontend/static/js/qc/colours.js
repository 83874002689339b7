// One colour per folder, from the palette in app.css (.c0 ... .c11), shared by the map, the
// legend, the tables' swatches and the altitude profile.

const PALETTE_SIZE = 12;

function readPalette() {
  // The CSS classes hold the colours; Leaflet and SVG need them as values.
  const probe = document.createElement("span");
  probe.hidden = true;
  document.body.appendChild(probe);
  const colours = [];
  for (let i = 0; i < PALETTE_SIZE; i += 1) {
    probe.className = "c" + i;
    colours.push(getComputedStyle(probe).backgroundColor);
  }
  probe.remove();
  return colours;
}

export class Palette {
  constructor() {
    this.colours = readPalette();
    this.index = new Map();  // folder -> palette index
  }

  /** Folders keep the colour they first got; the document's order decides the rest. */
  assign(folders) {
    for (const name of folders) {
      this.indexOf(name);
    }
  }

  /** Start again in the document's order (so a reloaded page shows the same colours). */
  reset(folders) {
    this.index.clear();
    this.assign(folders);
  }

  indexOf(folder) {
    if (!this.index.has(folder)) {
      this.index.set(folder, this.index.size % PALETTE_SIZE);
    }
    return this.index.get(folder);
  }

  colour(folder) {
    return this.colours[this.indexOf(folder)];
  }

  /** The class of a folder's swatch element. */
  swatchClass(folder) {
    return "swatch c" + this.indexOf(folder);
  }

  folders() {
    return Array.from(this.index.keys());
  }
}
