// The workbench's outbox: label edits wait here (and in localStorage) until the server has them.
//
// Edits go out one at a time, in the order they were made. A network failure or a 5xx keeps the
// edit and retries with a growing delay (and at once when the browser says it is online again); a
// closed tab or a reload sends what is left on the next visit. A conflict or a refusal takes the
// edit out and hands it to the page, which shows it to the labeler.

const RETRY_MS = [500, 1000, 2000, 4000, 8000];

export class Outbox {
  /**
   * @param {string} storageKey where the pending edits persist (one per user, dataset and branch)
   * @param {(edit: object) => Promise<{outcome: string, data: any}>} send one edit to the server
   * @param {(event: string, edit: object|null, data: any) => void} notify what happened, for the page
   */
  constructor(storageKey, send, notify) {
    this.storageKey = storageKey;
    this.send = send;
    this.notify = notify;
    this.items = this.load();
    this.running = false;
    this.failures = 0;
    this.timer = null;
    this.offline = false;
    window.addEventListener("online", () => this.retryNow());
    document.addEventListener("visibilitychange", () => { if (!document.hidden) this.retryNow(); });
  }

  load() {
    try {
      const saved = JSON.parse(localStorage.getItem(this.storageKey) || "[]");
      return Array.isArray(saved) ? saved.map((e) => ({ ...e, inFlight: false })) : [];
    } catch {
      return [];
    }
  }

  persist() {
    localStorage.setItem(this.storageKey, JSON.stringify(this.items.map(({ inFlight, ...e }) => e)));
  }

  get size() { return this.items.length; }

  pendingFor(key) { return this.items.filter((e) => e.key === key); }

  /** Queue an edit; an unsent edit of the same key is replaced (it carries the version first seen). */
  add(edit) {
    const waiting = this.items.findIndex((e) => e.key === edit.key && !e.inFlight);
    if (waiting >= 0) {
      this.items[waiting] = { ...edit, version: this.items[waiting].version, id: this.items[waiting].id };
    } else {
      this.items.push({ ...edit, id: `${Date.now()}-${Math.random().toString(36).slice(2)}` });
    }
    this.persist();
    this.notify("queued", edit, null);
    this.kick();
  }

  /** Take back the unsent edit of key; false when it is already on its way or saved. */
  withdraw(key) {
    const i = this.items.findIndex((e) => e.key === key && !e.inFlight);
    if (i < 0) return false;
    this.items.splice(i, 1);
    this.persist();
    this.notify("withdrawn", null, null);
    return true;
  }

  retryNow() {
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    this.failures = Math.min(this.failures, 1);
    this.kick();
  }

  async kick() {
    if (this.running || this.timer) return;
    this.running = true;
    try {
      while (this.items.length) {
        const edit = this.items[0];
        edit.inFlight = true;
        let result;
        try {
          result = await this.send(edit);
        } catch (err) {
          result = { outcome: "offline", data: String(err) };
        }
        edit.inFlight = false;
        if (result.outcome === "offline" || result.outcome === "signed-out") {
          this.offline = result.outcome === "offline";
          const wait = RETRY_MS[Math.min(this.failures, RETRY_MS.length - 1)];
          this.failures += 1;
          this.notify(result.outcome, edit, { retryInMs: wait });
          this.timer = setTimeout(() => { this.timer = null; this.kick(); }, wait);
          return;
        }
        this.items.shift();
        // A later edit of the same key was made on top of this one: it now edits the saved version.
        if (result.outcome === "saved" && result.data && result.data.example_version) {
          for (const later of this.items) if (later.key === edit.key) later.version = result.data.example_version;
        }
        this.persist();
        this.failures = 0;
        if (this.offline) { this.offline = false; this.notify("online", null, null); }
        this.notify(result.outcome, edit, result.data);
      }
      this.notify("idle", null, null);
    } finally {
      this.running = false;
    }
  }
}
