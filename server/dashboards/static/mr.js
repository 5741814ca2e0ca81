// Merge request pages: every action is a call to the REST API (the same rules as scripts meet); the page
// then reloads to show the request as the server now sees it, or shows the server's message in place.
import { api, cfg, describe } from "../labeling/page.js";

function say(where, text) {
  where.textContent = text;
  where.hidden = false;
}

// Forms marked data-api send their fields as JSON (empty ones left out) to data-path under the dataset.
for (const form of document.querySelectorAll("form[data-api]")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = form.querySelector(".form-message");
    const body = {};
    for (const [k, v] of new FormData(form).entries()) if (String(v).trim()) body[k] = String(v);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const res = await api(form.dataset.api, form.dataset.path, body).catch(() => null);
    button.disabled = false;
    if (!res) { say(message, "The server cannot be reached: nothing was sent; try again."); return; }
    if (res.status >= 400) { say(message, describe(res.data, `refused (${res.status})`)); return; }
    if (res.data && res.data.number && form.id === "open-form") location.assign(`/d/${encodeURIComponent(cfg.dataset)}/merge-requests/${res.data.number}`);
    else location.reload();
  });
}

const path = `/merge-requests/${cfg.number}`;
const actionMessage = document.getElementById("action-message");

for (const button of document.querySelectorAll("button[data-action]")) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    const res = await api("POST", `${path}/${button.dataset.action}`).catch(() => null);
    if (res && res.status < 400) { location.reload(); return; }
    button.disabled = false;
    say(actionMessage, res ? describe(res.data, `refused (${res.status})`) : "The server cannot be reached; try again.");
  });
}

for (const button of document.querySelectorAll("button[data-resolve]")) {
  button.addEventListener("click", async () => {
    const key = button.closest("tr").dataset.key;
    const res = await api("PUT", `${path}/resolutions/${key.split("/").map(encodeURIComponent).join("/")}`, { take: button.dataset.resolve }).catch(() => null);
    if (res && res.status === 200) { location.reload(); return; }
    say(actionMessage, res ? describe(res.data, `refused (${res.status})`) : "The server cannot be reached; try again.");
  });
}

document.body.dataset.ready = "1";
