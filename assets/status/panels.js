// The host-wide panels of the status page: recent hook invocations with their steps, the broker's
// backends, and the host's resource pressure.
import { api, byId, bytes, clock, duration, el, fact, ms, problem, show } from "./dom.js";

const maxInvocations = 20;

/** The newest hook invocations, by event id: from `/v1/events/recent` first, then live `invocation` events. */
export const invocationsPanel = () => {
  const invocations = new Map(); // event id → invocation event

  const render = () => {
    const sorted = [...invocations.entries()].sort((a, b) => b[0] - a[0]);
    for (const [id] of sorted.slice(maxInvocations)) invocations.delete(id);
    const newest = sorted.slice(0, maxInvocations);
    byId("invocations-empty").hidden = newest.length > 0;
    byId("invocations").replaceChildren(...newest.map(([id, inv]) => {
      const decision = inv.decision || {};
      return el("li", { "data-event-id": id, "data-hook": inv.hook, "data-decision": decision.decision },
        el("p", null, el("time", { datetime: inv.at }, clock(inv.at)), " ", el("strong", null, inv.hook), ` for ${show(inv.subject)}: `,
          el("span", { class: "decision", "data-decision": decision.decision }, show(decision.decision)),
          decision.reason ? ` (${decision.reason})` : "", ` in ${Math.round(inv.duration_ms)} ms`),
        el("ol", { class: "steps" }, (inv.steps || []).map((step) =>
          el("li", { "data-outcome": step.outcome }, `${step.component}: ${step.outcome}, ${Math.round(step.duration_ms)} ms`,
            step.error ? ` — ${step.error.reason}: ${step.error.message}` : ""))));
    }));
  };

  return {
    /** A live `invocation` event. */
    add: (id, event) => { invocations.set(id, event); render(); },
    /** Reads the invocations still in the host's event ring. */
    loadRecent: async () => {
      // Health results fill most of the ring: ask for enough of it to find the last invocations.
      const r = await api("GET", "/v1/events/recent?limit=500");
      if (!r.ok || !r.json || !Array.isArray(r.json.events)) return;
      for (const { id, event } of r.json.events) if (event && event._tag === "invocation") invocations.set(id, event);
      render();
    },
    /** Forgets every invocation (logging out, or a new host). */
    clear: () => { invocations.clear(); render(); }
  };
};

const table = (headings, rows) =>
  el("div", { class: "scroll" }, el("table", null, el("thead", null, el("tr", null, headings.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", null, rows.map((cells) => el("tr", null, cells.map((c) => el("td", null, show(c))))))));

/** Shows the broker's snapshot (`/v1/broker`): whether it accepts, its counters and its backends. */
export const loadBroker = async () => {
  const r = await api("GET", "/v1/broker");
  const node = byId("broker");
  if (!r.ok || !r.json) { node.replaceChildren(el("p", { class: "muted" }, `Broker unavailable: ${problem(r)}`)); return; }
  const b = r.json;
  const counters = b.counters || {};
  node.replaceChildren(
    el("dl", { class: "facts" }, fact("Accepting", b.accepting ? "yes" : "no"), fact("Demoted (fd pressure)", b.demoted ? "yes" : "no"),
      fact("Connections", show(b.connections_open)), fact("Hellos / launches", `${show(counters.hellos)} / ${show(counters.launches)}`)),
    (b.backends || []).length === 0 ? el("p", { class: "muted" }, "No backend running.")
      : table(["Service", "Version", "State", "PID", "Started", "Last hello", "Last error"],
        b.backends.map((x) => [x.service, x.version, x.state, x.pid, x.started_at && clock(x.started_at), x.last_hello_at && clock(x.last_hello_at), x.last_error])));
};

/** Shows the host's resource pressure and control-server load (`/v1/runtime-metrics`). */
export const loadPressure = async () => {
  const r = await api("GET", "/v1/runtime-metrics");
  const node = byId("pressure");
  const p = r.ok && r.json ? r.json.resource_pressure : null;
  if (!p) { node.replaceChildren(el("p", { class: "muted" }, `Unavailable: ${problem(r)}`)); return; }
  const loop = p.event_loop || {};
  const memory = p.memory || {};
  const server = r.json.server || {};
  const fds = p.open_fds !== null && p.fd_soft_limit
    ? el("meter", { min: 0, max: p.fd_soft_limit, value: p.open_fds, high: p.fd_soft_limit * 0.8, "aria-label": "open file descriptors" })
    : null;
  node.replaceChildren(el("dl", { class: "facts" },
    fact("Open fds", [`${show(p.open_fds)} of ${show(p.fd_soft_limit)} `, fds]),
    fact("Event-loop delay", `p50 ${ms(loop.delay_p50_ms)}, p99 ${ms(loop.delay_p99_ms)}, max ${ms(loop.delay_max_ms)}`),
    fact("Event-loop use", typeof loop.utilization === "number" ? `${(loop.utilization * 100).toFixed(1)} %` : "—"),
    fact("Memory", `rss ${bytes(memory.rss_bytes)}, heap ${bytes(memory.heap_used_bytes)} of ${bytes(memory.heap_total_bytes)}`),
    fact("Threads / CPUs", `${show(p.process_threads)} / ${show(p.os_parallelism)}`),
    fact("Control requests", `${show(server.in_flight)} in flight, ${show(server.requests_total)} served, ${show(server.rejected_over_capacity_total)} refused`),
    fact("Host uptime", typeof p.uptime_sec === "number" ? duration(p.uptime_sec * 1000) : "—")));
};
