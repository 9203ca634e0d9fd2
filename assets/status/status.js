// Corral's status page: logs in (the token becomes an HttpOnly session cookie the page never sees, and a
// page key it keeps in sessionStorage and sends with every request), then shows the host's components, hook invocations, broker and resource pressure, kept live by
// EventSource('/v1/events') without reloading. Every value from the host goes into the DOM as text.
import { api, byId, pageKey, problem, Unauthorized } from "./dom.js";
import { componentsPanel } from "./components.js";
import { invocationsPanel, loadBroker, loadPressure } from "./panels.js";

const eventTypes = ["lifecycle", "health", "invocation", "broker", "reload"];
const live = { source: null, lastEventId: 0, timers: [], recheck: undefined };

const say = (text, kind) => { const node = byId("action-status"); node.textContent = text; node.dataset.kind = kind || "info"; };
const setConnection = (name, text) => { const node = byId("connection"); node.dataset.state = name; node.textContent = text; };

/** Runs an API task; a 401 (no session, or an expired one) goes back to the login form. */
const guarded = (task) => task().catch((error) => {
  if (error instanceof Unauthorized) showLogin("Your session ended: log in again.");
  else setConnection("down", `host unreachable (${error.message})`);
});

const components = componentsPanel({ guarded, say });
const invocations = invocationsPanel();

/** Rereads everything events patch, after (re)connecting or missing events. */
const resync = () => { guarded(components.refreshAll); guarded(loadBroker); guarded(invocations.loadRecent); };

const onEvent = (type, message) => {
  const id = Number(message.lastEventId);
  if (Number.isInteger(id) && id > 0) {
    // Ids only grow for the life of a host: a smaller one means a new host, so start over from it.
    if (id <= live.lastEventId) { invocations.clear(); resync(); }
    live.lastEventId = id;
  }
  let event;
  try { event = JSON.parse(message.data); } catch { return; }
  if (type === "lifecycle") components.onLifecycle(event);
  else if (type === "health") components.onHealth(event);
  else if (type === "invocation") invocations.add(id, event);
  else if (type === "broker") guarded(loadBroker);
  else if (type === "reload") {
    say(event.applied
      ? `Config reloaded: ${event.added.length} added, ${event.removed.length} removed, ${event.restarted.length} restarted.`
      : `Reload refused: ${event.problems.join("; ")}`, event.applied ? "info" : "error");
    guarded(components.refreshAll);
  }
};

const closeEvents = () => { if (live.source) { live.source.close(); live.source = null; } };

/**
 * Follows `/v1/events`. The browser itself reconnects with Last-Event-ID after a dropped stream; each
 * (re)opened stream rereads the state, so nothing that happened while it was down stays unseen.
 */
const openEvents = () => {
  closeEvents();
  // EventSource cannot set headers: the page key goes in the query (only this path takes it there).
  const source = new EventSource(`/v1/events?page_key=${encodeURIComponent(pageKey.get() || "")}`);
  live.source = source;
  source.addEventListener("open", () => { setConnection("live", "live"); resync(); });
  source.addEventListener("error", () => {
    if (source.readyState !== EventSource.CLOSED) { setConnection("reconnecting", "reconnecting…"); return; }
    // Closed for good (a 401, or an answer that was not a stream): find out why, then follow again.
    setConnection("down", "disconnected");
    if (live.source === source) live.source = null;
    clearTimeout(live.recheck);
    live.recheck = setTimeout(() => guarded(async () => { await components.refreshAll(); openEvents(); }), 3000);
  });
  source.addEventListener("gap", resync);
  for (const type of eventTypes) source.addEventListener(type, (message) => onEvent(type, message));
};

const stopLive = () => {
  closeEvents();
  clearTimeout(live.recheck);
  live.timers.forEach(clearInterval);
  live.timers = [];
};

/** The login form, and nothing of the host's data left on the page. */
function showLogin(why) {
  stopLive();
  pageKey.clear();
  live.lastEventId = 0;
  components.clear();
  invocations.clear();
  for (const id of ["broker", "pressure", "action-status"]) byId(id).replaceChildren();
  byId("dashboard").hidden = true;
  byId("logout").hidden = true;
  byId("login-view").hidden = false;
  byId("login-error").textContent = why || "";
  setConnection("idle", "not logged in");
  byId("token").focus();
}

const showDashboard = async (list) => {
  stopLive();
  byId("login-view").hidden = true;
  byId("dashboard").hidden = false;
  byId("logout").hidden = false;
  setConnection("connecting", "connecting…");
  components.applyList(list);
  openEvents();
  live.timers.push(
    setInterval(components.tick, 1000),
    // Resource pressure has no events: it is read every 5 s while the page is in view.
    setInterval(() => { if (!document.hidden) guarded(loadPressure); }, 5000));
  await guarded(loadPressure);
};

/** First paint: the dashboard when the session is good, else the login form; an unreachable host is retried. */
const boot = () => (pageKey.get() ? api("GET", "/v1/components") : Promise.reject(new Unauthorized("no page key")))
  .then((r) => { if (!r.ok) throw new Error(problem(r)); return showDashboard(r.json.components); })
  .catch((error) => {
    if (error instanceof Unauthorized) { showLogin(); return; }
    setConnection("down", `host unreachable (${error.message}); retrying`);
    clearTimeout(live.recheck);
    live.recheck = setTimeout(boot, 5000);
  });

byId("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = byId("token");
  const token = input.value.trim();
  byId("login-error").textContent = "";
  api("POST", "/v1/session", { token })
    .then((r) => {
      input.value = "";
      if (r.ok && r.json && typeof r.json.key === "string") { pageKey.set(r.json.key); boot(); }
      else byId("login-error").textContent = `Login failed: ${problem(r)}`;
    })
    .catch((error) => {
      byId("login-error").textContent = error instanceof Unauthorized ? "That token was not accepted." : `Login failed: ${error.message}`;
    });
});

/** A login link lands on /#key=<page key>: keep the key, and take it out of the address bar and history. */
const takeKeyFromUrl = () => {
  const match = /^#key=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (!match) return;
  pageKey.set(match[1]);
  history.replaceState(null, "", location.pathname + location.search);
};

byId("logout").addEventListener("click", () => {
  api("DELETE", "/v1/session").catch(() => undefined).finally(() => showLogin("Logged out."));
});
takeKeyFromUrl();
boot();
