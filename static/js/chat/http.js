// The chat's JSON endpoints (docs/ARCHITECTURE.md, "HTTP endpoints of the chat"): same
// origin, the CSRF header on writes, errors as a sentence for the person.
//
// Addresses come from the page data (`urls`, built with Django's reverse): a template such as
// "/c/{conversation_id}/rename/" is filled in with urlFor().

import { gettext, interpolate } from "./i18n.js";

export function urlFor(template, values = {}) {
  return String(template).replace(/\{(\w+)\}/g, (match, key) =>
    key in values ? encodeURIComponent(String(values[key])) : match,
  );
}

function csrfToken(document) {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (match) return decodeURIComponent(match[1]);
  // CSRF_COOKIE_HTTPONLY deployments: the logout form carries the token too.
  const field = document.querySelector('input[name="csrfmiddlewaretoken"]');
  return field ? field.value : "";
}

// A client for one page. request(url, {method, body}) -> {ok, status, data, error}; `error`
// is the server's sentence, or ours (offline, session expired, an unexpected status).
export function createHttp(window) {
  async function request(url, { method = "GET", body } = {}) {
    let response;
    try {
      const headers = { Accept: "application/json" };
      if (method !== "GET") {
        headers["X-CSRFToken"] = csrfToken(window.document);
        headers["Content-Type"] = "application/json";
      }
      response = await window.fetch(url, {
        method,
        credentials: "same-origin",
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      return {
        ok: false,
        status: 0,
        data: null,
        error: gettext("Cannot reach the server. Check your connection and try again."),
      };
    }
    let data = null;
    const isJson = (response.headers.get("Content-Type") || "").includes("application/json");
    if (isJson) {
      try {
        data = await response.json();
      } catch {
        data = null;
      }
    }
    // An expired session answers with a redirect to the login page, not with JSON.
    if (response.redirected && !isJson) {
      return {
        ok: false,
        status: response.status,
        data: null,
        error: gettext("Your session has expired. Reload the page and sign in again."),
      };
    }
    if (!response.ok) {
      let message = data && data.error;
      if (!message && response.status === 403) {
        message = gettext("This action was refused. Reload the page and try again.");
      }
      if (!message) {
        message = interpolate(gettext("Something went wrong (error %s). Try again."), [response.status]);
      }
      return { ok: false, status: response.status, data, error: message };
    }
    return { ok: true, status: response.status, data, error: "" };
  }

  return {
    request,
    get: (url) => request(url),
    post: (url, body) => request(url, { method: "POST", body }),
  };
}
