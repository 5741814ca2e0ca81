// What every page script shares: the page's configuration, the DOM helpers, and the REST API signed in
// by the session cookie (writes carry the CSRF token, refreshed when the session is renewed).
// Everything from a dataset reaches the page through el(..., { text }) (textContent), never as markup.

export const cfg = JSON.parse(document.getElementById("s2-config").textContent);
export const $ = (id) => document.getElementById(id);
export const enc = encodeURIComponent;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let csrf = document.querySelector('meta[name="csrf-token"]').content;

// A REST call under /api/v1 with the session cookie; a write carries the CSRF token and, refused for a
// stale token (the session was renewed in another tab), is sent once more with the fresh one.
export async function call(method, path, body) {
  const send = () => {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRF-Token"] = csrf;
    return fetch(`/api/v1${path}`, {
      method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
    });
  };
  let res = await send();
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (res.status === 403 && method !== "GET" && String(describe(data, "")).includes("X-CSRF-Token") && await refreshCsrf()) {
    res = await send();
    try { data = await res.json(); } catch { data = null; }
  }
  return { status: res.status, data };
}

// The same, for a path under the page's dataset (/api/v1/datasets/NAME...).
export async function api(method, path, body) {
  return call(method, `/datasets/${enc(cfg.dataset)}${path}`, body);
}

export async function refreshCsrf() {
  try {
    const res = await fetch("/session", { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (res.ok) { csrf = (await res.json()).csrf; return true; }
  } catch { /* still offline */ }
  return false;
}

export function describe(data, fallback) {
  return (data && (data.detail || data.title)) || fallback;
}

export function mediaUrl(example) { return `/api/v1/datasets/${enc(cfg.dataset)}/media/${example.input}`; }

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("data-") || k.startsWith("aria-") || k === "title" || k === "type" || k === "href" || k === "role") node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}
