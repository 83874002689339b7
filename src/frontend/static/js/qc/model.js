// The result document as the page reads it: what a photo's problems are, how rows sort, and how
// numbers and times are written. Pure functions, no DOM.

// The six problem kinds the technician filters by, in the order the filter lists them.
export const KINDS = [
  { key: "missing_gps", label: "missing GPS" },
  { key: "blur", label: "blur" },
  { key: "exposure", label: "exposure" },
  { key: "duplicate", label: "duplicate" },
  { key: "outside", label: "outside site" },
  { key: "unreadable", label: "unreadable" },
];

// Check (outcome) names that fold into one of the six kinds; the others (resolution, iso,
// shutter, gimbal_pitch, camera_model) still show on the row and count as "a problem".
const DUPLICATES = new Set(["duplicate", "near_duplicate", "hovering"]);
const UNREADABLE = new Set(["integrity", "decode"]);

export function folderOf(path) {
  const cut = path.indexOf("/");
  return cut < 0 ? "" : path.slice(0, cut);
}

export function fileOf(path) {
  return path.slice(path.lastIndexOf("/") + 1);
}

export function hasGps(image) {
  return image.lat !== null && image.lat !== undefined && image.lon !== null &&
    image.lon !== undefined;
}

/** The failed check outcomes of a photo (empty before the checks, or when all passed). */
export function failures(image) {
  if (!image.checks || !image.checks.outcomes) {
    return [];
  }
  return image.checks.outcomes.filter((outcome) => !outcome.ok);
}

/** The set of the six filter kinds a photo falls under. */
export function kindsOf(image) {
  const kinds = new Set();
  if (image.error) {
    kinds.add("unreadable");
  } else if (!hasGps(image)) {
    kinds.add("missing_gps");
  }
  for (const outcome of failures(image)) {
    const name = outcome.name;
    if (name === "blur" || name === "exposure") {
      kinds.add(name);
    } else if (DUPLICATES.has(name)) {
      kinds.add("duplicate");
    } else if (UNREADABLE.has(name)) {
      kinds.add("unreadable");
    } else if (name === "position" && hasGps(image)) {
      kinds.add("outside");  // without a position, "missing GPS" already says it
    }
  }
  return kinds;
}

/** What is wrong with a photo, as tags: [{label, tone, message}], worst first. */
export function problemsOf(image) {
  const out = [];
  if (image.error) {
    out.push({ label: "unreadable", tone: "bad", message: image.error });
  } else if (!hasGps(image)) {
    out.push({ label: "no GPS", tone: "warn", message: image.gps_note || "no GPS position" });
  }
  for (const outcome of failures(image)) {
    if (outcome.name === "position" && !hasGps(image)) {
      continue;  // said above
    }
    out.push({ label: outcome.name.replace(/_/g, " "), tone: "bad", message: outcome.message });
  }
  return out;
}

/** Photos in the order they were taken; photos without a time last, then by path. */
export function byTakenThenPath(a, b) {
  const ta = a.taken || "\uffff";
  const tb = b.taken || "\uffff";
  if (ta !== tb) {
    return ta < tb ? -1 : 1;
  }
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

/** Milliseconds of a capture time ("2024-05-14T09:30:02", no zone: read as UTC throughout). */
export function timeOf(taken) {
  if (!taken) {
    return null;
  }
  const ms = Date.parse(taken.length <= 19 ? taken + "Z" : taken);
  return Number.isNaN(ms) ? null : ms;
}

export function showTime(taken) {
  return taken ? taken.replace("T", " ") : "";
}

export function showNumber(value, digits) {
  return value === null || value === undefined ? "" : Number(value).toFixed(digits);
}

export function showDuration(seconds) {
  if (seconds === null || seconds === undefined) {
    return "unknown";
  }
  if (seconds < 60) {
    return Math.ceil(seconds) + " s";
  }
  return Math.floor(seconds / 60) + " min " + Math.ceil(seconds % 60) + " s";
}

export function showBytes(bytes) {
  if (bytes === null || bytes === undefined) {
    return "";
  }
  if (bytes >= 1e6) {
    return (bytes / 1e6).toFixed(1) + " MB";
  }
  return Math.round(bytes / 1e3) + " KB";
}

/** The folder summaries' totals: images, GPS points, missing GPS, unreadable. */
export function totalsOf(doc) {
  const totals = { images: 0, gps_points: 0, missing_gps: 0, errors: 0 };
  for (const folder of doc.folders) {
    totals.images += folder.images;
    totals.gps_points += folder.gps_points;
    totals.missing_gps += folder.missing_gps;
    totals.errors += folder.errors;
  }
  return totals;
}

/** True once the document carries the photo checks' verdicts. */
export function checked(doc) {
  return Boolean(doc.check_stats);
}
