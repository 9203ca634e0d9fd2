// The status page's toolkit: DOM built from host data as text only (never markup), value formatting,
// and calls to the host's API with the session cookie.

/** The element with this id. */
export const byId = (id) => document.getElementById(id);

/** Builds an element; children are nodes or text (strings become text nodes, never markup). */
export const el = (tag, attrs, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  return node;
};

/** A term and its value, for a `<dl>`. */
export const fact = (term, value) => [el("dt", null, term), el("dd", null, value)];

/** A value as text, with a dash for nothing. */
export const show = (text) => (text === null || text === undefined || text === "" ? "—" : String(text));

/** A duration as its two largest units ("1h 5m", "42s"). */
export const duration = (millis) => {
  const s = Math.max(0, Math.floor(millis / 1000));
  const parts = [[Math.floor(s / 86400), "d"], [Math.floor(s / 3600) % 24, "h"], [Math.floor(s / 60) % 60, "m"], [s % 60, "s"]];
  const first = parts.findIndex(([n]) => n > 0);
  return first < 0 ? "0s" : parts.slice(first, first + 2).map(([n, unit]) => `${n}${unit}`).join(" ");
};

/** Milliseconds with one decimal. */
export const ms = (n) => (typeof n === "number" ? `${n.toFixed(1)} ms` : "—");

/** A byte count in KiB or MiB. */
export const bytes = (n) => (typeof n !== "number" ? "—" : n >= 1048576 ? `${(n / 1048576).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`);

/** The local time of an ISO timestamp. */
export const clock = (iso) => {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? show(iso) : date.toLocaleTimeString();
};

/** A 401 from the host: no session, or an expired one. */
export class Unauthorized extends Error {}

const pageKeyItem = "corral.pageKey";

/**
 * The session's page key, kept in sessionStorage: per origin (port included), so a page another local user
 * serves on another port of 127.0.0.1 cannot read it, although the browser sends it the cookie. A new tab
 * starts without it, so it shows the login form.
 */
export const pageKey = {
  get: () => sessionStorage.getItem(pageKeyItem),
  set: (key) => sessionStorage.setItem(pageKeyItem, key),
  clear: () => sessionStorage.removeItem(pageKeyItem),
};

/**
 * Calls the host's API with the session cookie (the page never holds the token); every request carries the
 * session's page key in X-Corral-Page, without which the host refuses the cookie. Resolves with the status
 * and the body (parsed when it is JSON).
 */
export const api = async (method, path, body) => {
  const headers = { accept: "application/json" };
  const key = pageKey.get();
  if (key) headers["x-corral-page"] = key;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method, headers, credentials: "same-origin", cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body)
  });
  if (response.status === 401) throw new Unauthorized(path);
  const text = await response.text();
  let json = null;
  try { json = text.length > 0 ? JSON.parse(text) : null; } catch { json = null; }
  return { status: response.status, ok: response.ok, json, text };
};

/** What the host said went wrong (its `message`), or the status. */
export const problem = (r) => (r.json && typeof r.json.message === "string" ? r.json.message : `HTTP ${r.status}`);
