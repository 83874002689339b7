// The flight-path map of a finished scan: a marker per GPS point and a line per folder, in the
// order the photos were taken. Points and lines are vector layers, so they draw whether or not
// the background tiles load.
(function () {
  "use strict";
  var root = document.getElementById("qc");
  var mapEl = document.getElementById("map");
  if (!root || !mapEl || typeof L === "undefined") {
    return;
  }

  // Each folder's colour comes from its swatch in the folder table (one palette, in the CSS).
  function folderColours() {
    var colours = {};
    document.querySelectorAll("#folders tr[data-folder]").forEach(function (row) {
      var swatch = row.querySelector(".swatch");
      colours[row.dataset.folder] = swatch ? getComputedStyle(swatch).backgroundColor : "#333";
    });
    return colours;
  }

  function byTakenThenPath(a, b) {
    var ta = a.taken || "\uffff";
    var tb = b.taken || "\uffff";
    if (ta !== tb) {
      return ta < tb ? -1 : 1;
    }
    return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
  }

  function pointsByFolder(images) {
    var folders = {};
    images.forEach(function (image) {
      if (image.error || image.lat === null || image.lon === null) {
        return;
      }
      var folder = image.path.split("/")[0];
      (folders[folder] = folders[folder] || []).push(image);
    });
    Object.keys(folders).forEach(function (name) {
      folders[name].sort(byTakenThenPath);
    });
    return folders;
  }

  function popup(image) {
    var box = document.createElement("div");
    var title = document.createElement("strong");
    title.textContent = image.path;
    box.appendChild(title);
    [
      image.taken ? "taken " + image.taken.replace("T", " ") : null,
      image.lat.toFixed(6) + ", " + image.lon.toFixed(6),
      image.alt !== null ? "altitude " + image.alt.toFixed(1) + " m" : null,
      image.camera,
    ].forEach(function (line) {
      if (line) {
        box.appendChild(document.createElement("br"));
        box.appendChild(document.createTextNode(line));
      }
    });
    return box;
  }

  function addTiles(map) {
    var url = mapEl.dataset.tileUrl;
    var note = document.getElementById("map-note");
    if (!url) {
      note.hidden = false;
      return;
    }
    var tiles = L.tileLayer(url, { maxZoom: 19, attribution: mapEl.dataset.tileAttribution });
    tiles.on("tileerror", function () {
      note.hidden = false;
    });
    tiles.addTo(map);
  }

  function draw(job) {
    var folders = pointsByFolder(job.result.images);
    var names = Object.keys(folders);
    if (names.length === 0) {
      mapEl.hidden = true;
      document.getElementById("map-empty").hidden = false;
      return;
    }
    // Canvas draws a site's ~1,400 markers much faster than one SVG element each.
    var map = L.map(mapEl, { preferCanvas: true });
    var colours = folderColours();
    var bounds = L.latLngBounds([]);
    names.forEach(function (name) {
      var colour = colours[name] || "#333";
      var line = folders[name].map(function (image) {
        return [image.lat, image.lon];
      });
      L.polyline(line, { color: colour, weight: 2, opacity: 0.8 }).addTo(map);
      folders[name].forEach(function (image) {
        L.circleMarker([image.lat, image.lon], {
          radius: 4, color: colour, weight: 1, fillColor: colour, fillOpacity: 0.9,
        }).bindPopup(popup(image)).addTo(map);
      });
      line.forEach(function (point) {
        bounds.extend(point);
      });
    });
    map.fitBounds(bounds, { padding: [24, 24], maxZoom: 19 });
    addTiles(map);  // after the vector layers, and nothing waits for it
  }

  fetch(root.dataset.resultUrl, { headers: { Accept: "application/json" } })
    .then(function (response) {
      if (!response.ok) {
        throw new Error("the server answered " + response.status);
      }
      return response.json();
    })
    .then(function (job) {
      if (job.result) {
        draw(job);
      }
    })
    .catch(function (err) {
      var note = document.getElementById("map-empty");
      note.textContent = "Cannot load the points for the map (" + err.message + ").";
      note.hidden = false;
    });
})();
