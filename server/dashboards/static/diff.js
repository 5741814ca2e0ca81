// The diff page: say so when the counts could not be loaded (htmx leaves an error answer unswapped).
const panel = document.getElementById("diff-summary");

function failed(event) {
  if (event.detail.elt !== panel) return;
  const status = event.detail.xhr ? event.detail.xhr.status : 0;
  const note = document.createElement("p");
  note.className = "error";
  note.setAttribute("role", "alert");
  note.textContent = status
    ? `The counts could not be loaded (HTTP ${status}): reload the page to try again.`
    : "The counts could not be loaded (no answer from the server): reload the page to try again.";
  panel.querySelector("[aria-busy]")?.replaceWith(note);
}

if (panel) {
  document.body.addEventListener("htmx:responseError", failed);
  document.body.addEventListener("htmx:sendError", failed);
}
