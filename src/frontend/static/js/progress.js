// Progress of a running QC job: polls the job's state once a second and shows count, rate and
// ETA of the pass under way. The page reloads when the job reaches a new stage (GPS result
// ready, checks done, job ended), so every finished part is rendered by the server.
(function () {
  "use strict";
  var root = document.getElementById("qc");
  if (!root || root.dataset.state !== "running") {
    return;
  }
  var bar = document.getElementById("progress-bar");
  var text = document.getElementById("progress-text");
  var problem = document.getElementById("progress-error");
  var cancel = document.getElementById("cancel");
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var scanReady = root.dataset.scanReady === "true";
  var checksState = root.dataset.checksState;
  var POLL_MS = 1000;

  function duration(seconds) {
    if (seconds === null || seconds === undefined) {
      return "unknown";
    }
    if (seconds < 60) {
      return Math.ceil(seconds) + " s";
    }
    return Math.floor(seconds / 60) + " min " + Math.ceil(seconds % 60) + " s";
  }

  function show(job) {
    var pass = scanReady ? job.checks : job.gps;
    var noun = scanReady ? " photos checked" : " images";
    bar.max = pass.total || 1;
    bar.value = pass.done;
    var line = pass.done + " of " + (pass.total || "?") + noun;
    if (!scanReady) {
      line += ", " + job.gps_points + " GPS points";
    }
    if (pass.rate > 0) {
      line += " · " + pass.rate.toFixed(1) + "/s · about " + duration(pass.eta_s) + " left";
    }
    text.textContent = line;
  }

  function stageChanged(job) {
    return job.state !== "running" || job.scan_ready !== scanReady ||
      (scanReady && job.checks_state !== checksState && job.checks_state !== "running");
  }

  function complain(message) {
    problem.textContent = message;
    problem.hidden = false;
  }

  function poll() {
    fetch(root.dataset.jobUrl, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (response.status === 401) {
          window.location.assign("/login");
          return null;
        }
        if (!response.ok) {
          throw new Error("the server answered " + response.status);
        }
        return response.json();
      })
      .then(function (job) {
        if (job === null) {
          return;
        }
        problem.hidden = true;
        if (stageChanged(job)) {
          window.location.reload();
          return;
        }
        show(job);
        window.setTimeout(poll, POLL_MS);
      })
      .catch(function (err) {
        complain("Cannot get the progress (" + err.message + "); retrying.");
        window.setTimeout(poll, POLL_MS * 3);
      });
  }

  cancel.addEventListener("click", function () {
    cancel.disabled = true;
    cancel.textContent = "Cancelling…";
    fetch(root.dataset.cancelUrl, {
      method: "POST",
      headers: { "X-CSRFToken": csrf, Accept: "application/json" },
    }).catch(function (err) {
      cancel.disabled = false;
      complain("Cannot cancel (" + err.message + ").");
    });
  });

  window.setTimeout(poll, POLL_MS);
})();
