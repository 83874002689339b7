// The result document as the page reads it: the names of the verdict's kinds, how rows and
// folders sort, and how numbers and times are written. Pure functions, no DOM.

export function folderOf(path) {
  const cut = path.indexOf("/");
  return cut < 0 ? "" : path.slice(0, cut);
}

/** A photo's path inside its folder: the file name, or DCIM/100MEDIA/DJI_0001.JPG below a card. */
export function fileOf(path) {
  return path.slice(path.indexOf("/") + 1);
}

export function hasGps(image) {
  return image.lat !== null && image.lat !== undefined && image.lon !== null &&
    image.lon !== undefined;
}

/** Folder names in the one order every list on the page uses: alphabetical, case aside. */
export function byFolderName(a, b) {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  if (x !== y) {
    return x < y ? -1 : 1;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The verdict's kinds (``verdict.kinds``): each reason's one name, worst first. The page never
 * judges a photo itself: a photo's ``valid`` and ``problems`` come with the document, and
 * these are the names it shows for them.
 */
export class Kinds {
  constructor(kinds, folderReasons) {
    this.list = kinds || [];
    // The re-fly list's folder reasons (missing folder, too few photos) have names too.
    const named = this.list.concat(folderReasons || []);
    this.labels = new Map(named.map((kind) => [kind.kind, kind.label]));
    this.ranks = new Map(this.list.map((kind, i) => [kind.kind, i]));
  }

  label(key) {
    return this.labels.get(key) || key.replace(/_/g, " ");
  }

  rank(key) {
    return this.ranks.get(key) ?? this.list.length;
  }
}

/** "invalid", "valid" or "unchecked": the document's ``valid`` (absent on live photos). */
export function statusOf(image) {
  if (image.valid === false) {
    return "invalid";
  }
  return image.valid === true ? "valid" : "unchecked";
}

/** What is wrong with the photo, in the verdict's words (the document's ``reasons``). */
export function messagesOf(image) {
  return image.reasons || [];
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
