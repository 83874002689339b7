// Fetching the result documents: one rule for the QC page and an upload's results.

/**
 * GET ``url`` as JSON, never from the browser's cache. A 401 (the login ended) goes to the
 * login page and resolves to null; any other failure rejects with the status.
 */
export function getJson(url) {
  return fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" })
    .then((response) => {
      if (response.status === 401) {
        window.location.assign("/login");
        return null;
      }
      if (!response.ok) {
        throw new Error("the server answered " + response.status);
      }
      return response.json();
    });
}
