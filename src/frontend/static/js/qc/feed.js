// The job's live feed: Server-Sent Events, or polling of the job's state when EventSource is
// missing or keeps failing. Either way the page gets the same calls:
//   onState(state)        the job's state_json (progress, stage, per-folder counts)
//   onEvent(kind, data)   the stream's other events (image, scan, checked, checks)
//   onTrouble(message)    the feed is having problems (null once it recovers)
// The feed stops by itself when the job has ended.

const POLL_MS = 1000;
const FAILURES_BEFORE_POLLING = 3;  // EventSource errors in a row, with no event in between
const STATE_KINDS = new Set(["progress", "checks_progress", "state"]);

export function openFeed({ eventsUrl, stateUrl, onState, onEvent, onTrouble }) {
  let stopped = false;
  let source = null;
  let timer = null;

  function stop() {
    stopped = true;
    if (source) {
      source.close();
    }
    window.clearTimeout(timer);
  }

  function poll() {
    if (stopped) {
      return;
    }
    fetch(stateUrl, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then((response) => {
        if (response.status === 401) {
          window.location.assign("/login");  // the login expired: nothing more to follow
          stop();
          return null;
        }
        if (!response.ok) {
          throw new Error("the server answered " + response.status);
        }
        return response.json();
      })
      .then((state) => {
        if (state === null || stopped) {
          return;
        }
        onTrouble(null);
        onState(state);
        if (state.state !== "running") {
          stop();
        } else {
          timer = window.setTimeout(poll, POLL_MS);
        }
      })
      .catch((err) => {
        onTrouble("Cannot get the progress (" + err.message + "); retrying.");
        timer = window.setTimeout(poll, POLL_MS * 3);
      });
  }

  function startPolling() {
    if (source) {
      source.close();
      source = null;
    }
    if (!stopped) {
      poll();
    }
  }

  function listen() {
    let failures = 0;
    // The browser resumes a dropped stream by itself, sending Last-Event-ID: no event is lost.
    source = new EventSource(eventsUrl);
    const handle = (kind) => (message) => {
      failures = 0;
      onTrouble(null);
      const data = message.data ? JSON.parse(message.data) : {};
      if (STATE_KINDS.has(kind)) {
        onState(data);
      } else {
        onEvent(kind, data);
      }
    };
    for (const kind of ["image", "progress", "scan", "checked", "checks_progress", "checks",
      "state"]) {
      source.addEventListener(kind, handle(kind));
    }
    source.addEventListener("end", () => stop());
    source.addEventListener("error", () => {
      if (stopped) {
        return;
      }
      failures += 1;
      // CLOSED: the server refused the stream (an error status); the browser will not retry.
      if (source.readyState === EventSource.CLOSED || failures >= FAILURES_BEFORE_POLLING) {
        onTrouble("The live feed was interrupted; following the progress by polling instead.");
        startPolling();
      }
    });
  }

  if (typeof window.EventSource === "function" && eventsUrl) {
    listen();
  } else {
    poll();
  }
  return { stop };
}
