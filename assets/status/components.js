// The components panel: one card per component (phase, pid, uptime, restarts, health, last error,
// module report, depends_on), its start/stop/restart buttons and its log tail. Cards carry
// `data-component` and `data-phase`; a lifecycle event patches the phase at once, then the card is refetched.
import { api, byId, clock, duration, el, fact, problem, show } from "./dom.js";

const actions = ["start", "stop", "restart"];
const running = ["starting", "ready", "degraded"];
const titled = (word) => `${word[0].toUpperCase()}${word.slice(1)}`;
const componentPath = (id) => `/v1/components/${encodeURIComponent(id)}`;
const uptimeOf = (view) => (view && view.started_at && running.includes(view.phase) ? duration(Date.now() - Date.parse(view.started_at)) : "—");

/**
 * Makes the panel inside `#components`. `guarded` runs an API task (a 401 goes back to the login);
 * `say` tells the operator what an action did.
 */
export const componentsPanel = ({ guarded, say }) => {
  const cards = new Map(); // component id → card
  const seq = new Map(); // component id → lifecycle events seen, so a slow fetch never undoes a newer event
  const fetching = new Map(); // component id → "busy" | "again"

  const makeCard = (id) => {
    const fields = {};
    const field = (name) => (fields[name] = el("span"));
    fields.phase = el("span", { class: "phase" });
    const buttons = actions.map((action) =>
      el("button", { type: "button", "data-action": action, "aria-label": `${titled(action)} ${id}`, onclick: () => act(id, action) }, titled(action)));
    const logText = el("pre", { class: "log-text", tabindex: "0", "aria-label": `Last 50 log lines of ${id}` });
    const log = el("details", { class: "log", ontoggle: (e) => { if (e.target.open) guarded(() => loadLog(id)); } },
      el("summary", null, "Log tail"),
      el("button", { type: "button", class: "small", "aria-label": `Refresh log of ${id}`, onclick: () => guarded(() => loadLog(id)) }, "Refresh"),
      logText);
    const root = el("article", { class: "component", "data-component": id, "aria-label": id },
      el("header", null, el("h3", null, id), fields.phase),
      el("dl", { class: "facts" },
        fact("Kind", field("kind")), fact("PID", field("pid")), fact("Uptime", field("uptime")),
        fact("Restarts", field("restarts")), fact("Depends on", field("depends")), fact("Health", field("health"))),
      (fields.errorBox = el("div", { class: "last-error", hidden: true }, el("strong", null, "Last error"), (fields.error = el("pre")))),
      (fields.report = el("div", { class: "report" })),
      el("div", { class: "actions", role: "group", "aria-label": `Actions on ${id}` }, buttons),
      log);
    return { root, fields, buttons, log, logText, view: null };
  };

  const setPhase = (card, phase) => {
    card.root.dataset.phase = phase;
    card.fields.phase.dataset.phase = phase;
    card.fields.phase.textContent = phase;
    const busy = card.root.dataset.busy === "1";
    for (const button of card.buttons) {
      const action = button.dataset.action;
      const pointless = (action === "start" && running.includes(phase)) || (action === "stop" && ["stopping", "stopped", "configured"].includes(phase));
      button.disabled = busy || pointless;
    }
  };

  const renderReport = (node, report) => {
    node.replaceChildren();
    if (!report) return;
    node.append(el("p", null, el("strong", null, report.name), report.description ? ` — ${report.description}` : ""),
      el("p", { class: "muted" }, `capabilities: ${show((report.capabilities || []).join(", "))}; ` +
        `contract ${show(report.middleware_contract_version)}, host API ${show(report.host_api_version)}`));
  };

  const remove = (id) => {
    const card = cards.get(id);
    if (card) { card.root.remove(); cards.delete(id); }
  };

  /** Shows a component's view, creating its card in id order if it is new. */
  const applyView = (view) => {
    let card = cards.get(view.id);
    if (!card) {
      card = makeCard(view.id);
      cards.set(view.id, card);
      const next = [...cards.keys()].sort().find((other) => other > view.id);
      byId("components").insertBefore(card.root, next ? cards.get(next).root : null);
    }
    card.view = view;
    const f = card.fields;
    setPhase(card, String(view.phase));
    f.kind.textContent = show(view.kind);
    f.pid.textContent = show(view.pid);
    f.uptime.textContent = uptimeOf(view);
    f.restarts.textContent = view.restarts ? `${view.restarts.used} used, ${view.restarts.left} left` : "—";
    f.depends.textContent = show((view.depends_on || []).join(", "));
    f.health.textContent = view.last_health ? `${view.last_health.ok ? "ok" : "failing"} at ${clock(view.last_health.at)}` : "—";
    f.errorBox.hidden = !view.last_error;
    f.error.textContent = view.last_error || "";
    renderReport(f.report, view.report);
  };

  /** Shows the whole list: new cards appear, cards of components no longer listed go. */
  const applyList = (components) => {
    const ids = new Set(components.map((c) => c.id));
    for (const id of [...cards.keys()]) if (!ids.has(id)) remove(id);
    components.forEach(applyView);
  };

  /** Refetches one component; concurrent asks coalesce, and a view older than a newer event is dropped. */
  const refreshComponent = async (id) => {
    if (fetching.has(id)) { fetching.set(id, "again"); return; }
    fetching.set(id, "busy");
    try {
      const seen = seq.get(id) || 0;
      const r = await api("GET", componentPath(id));
      if (r.status === 404) remove(id);
      else if (r.ok && (seq.get(id) || 0) === seen) applyView(r.json);
    } finally {
      const again = fetching.get(id) === "again";
      fetching.delete(id);
      if (again) guarded(() => refreshComponent(id));
    }
  };

  const act = (id, action) => guarded(async () => {
    const card = cards.get(id);
    if (!card) return;
    card.root.dataset.busy = "1";
    setPhase(card, card.root.dataset.phase);
    say(`${id}: ${action} requested…`);
    const seen = seq.get(id) || 0;
    try {
      const r = await api("POST", `${componentPath(id)}/${action}`);
      if (!r.ok) { say(`${id}: ${action} refused: ${problem(r)}`, "error"); return; }
      const view = r.json && r.json.component ? r.json.component : r.json;
      say(`${id}: ${action} accepted${r.json && r.json.target ? `, going to ${r.json.target}` : ""}.`);
      if (view && view.id === id && (seq.get(id) || 0) === seen) applyView(view);
    } finally {
      delete card.root.dataset.busy;
      setPhase(card, card.root.dataset.phase);
    }
  });

  const loadLog = async (id) => {
    const card = cards.get(id);
    if (!card) return;
    const r = await api("GET", `${componentPath(id)}/logs?tail=50`);
    card.logText.textContent = r.ok ? (r.text.length > 0 ? r.text : "(the log is empty)") : `Could not read the log: ${problem(r)}`;
    card.logText.scrollTop = card.logText.scrollHeight; // a tail: the newest lines are the ones to see
  };

  return {
    applyList,
    /** Rereads every component. */
    refreshAll: async () => {
      const r = await api("GET", "/v1/components");
      if (r.ok) applyList(r.json.components);
    },
    /** A lifecycle event: show its phase now, then refetch the whole view (and the open log tail). */
    onLifecycle: (event) => {
      seq.set(event.component, (seq.get(event.component) || 0) + 1);
      const card = cards.get(event.component);
      if (card) { setPhase(card, event.to); card.fields.pid.textContent = show(event.pid); }
      guarded(() => refreshComponent(event.component));
      if (card && card.log.open) guarded(() => loadLog(event.component));
    },
    /** A health result: refetch that component. */
    onHealth: (event) => guarded(() => refreshComponent(event.component)),
    /** Advances every uptime by the clock. */
    tick: () => { for (const card of cards.values()) card.fields.uptime.textContent = uptimeOf(card.view); },
    /** Forgets every card (logging out). */
    clear: () => { cards.clear(); seq.clear(); byId("components").replaceChildren(); }
  };
};
