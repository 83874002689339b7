// Progress of a running scan: polls the job once a second and reloads the page when it ends,
// so the finished page (totals, tables, map) is rendered by the server.
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
  var POLL_MS = 1000;

  function show(job) {
    bar.max = job.total || 1;
    bar.value = job.done;
    text.textContent = job.done + " of " + (job.total || "?") + " images, " +
      job.gps_points + " GPS points";
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
        show(job);
        if (job.state === "running") {
          window.setTimeout(poll, POLL_MS);
        } else {
          window.location.reload();
        }
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
