// The dashboard talks to the proxy only through /ui/session, /ui/login, /ui/logout and the
// /ui/api bridge. The key stays in an HttpOnly cookie; this module only holds the CSRF token.

export class ApiError extends Error {
  constructor(status, message, code = null, param = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = param;
  }
}

let csrfToken = "";
let onSignedOut = null;

export function setCsrf(token) { csrfToken = token || ""; }
export function whenSignedOut(handler) { onSignedOut = handler; }

function query(params) {
  if (!params) return "";
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== "") search.set(k, String(v));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

function describe(status, data) {
  const err = data && data.error;
  if (err && err.message) return new ApiError(status, err.message, err.code || null, err.param || null);
  if (data && typeof data.detail === "string") return new ApiError(status, data.detail);
  const words = { 400: "the request was refused", 401: "you are not signed in", 403: "this key may not do that",
    404: "not found", 429: "too many requests; wait a moment", 500: "the proxy failed", 502: "an upstream failed",
    503: "the proxy is unavailable (is the database up?)", 504: "the proxy timed out" };
  return new ApiError(status, `The proxy answered ${status}: ${words[status] || "unexpected answer"}.`);
}

async function call(method, url, body) {
  const headers = { accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (method !== "GET") {
    headers["content-type"] = "application/json";
    headers["x-csrf-token"] = csrfToken;
    init.body = JSON.stringify(body ?? {});
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new ApiError(0, "The proxy could not be reached. Check the connection and try again.");
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!response.ok) throw describe(response.status, data);
  return data;
}

async function bridged(method, path, payload) {
  try {
    return await call(method, `/ui/api${path}${method === "GET" ? query(payload) : ""}`, method === "GET" ? undefined : payload);
  } catch (error) {
    if (error.status === 401 && onSignedOut) onSignedOut(error);
    throw error;
  }
}

export const api = {
  get: (path, params) => bridged("GET", path, params),
  post: (path, body) => bridged("POST", path, body),
  // For features that may not exist on this proxy (billing off, newer endpoints): null on 404
  // (and on the other statuses named, e.g. 403 for a section a key may not see).
  async optional(path, params, hideOn = [404]) {
    try {
      return await bridged("GET", path, params);
    } catch (error) {
      if (hideOn.includes(error.status)) return null;
      throw error;
    }
  },
};

export const auth = {
  session: () => call("GET", "/ui/session"),
  signIn: (key) => call("POST", "/ui/login", { key }),
  signOut: () => call("POST", "/ui/logout", {}),
};
