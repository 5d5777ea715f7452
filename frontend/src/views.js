// The triage, coverage and trace views: tables over /triage, /coverage and /traces/{id}.
import { api } from "./api.js";
import { clear, facts, fmt, h, table } from "./dom.js";
import { traceLinks } from "./panel.js";

function params() {
  return new URLSearchParams(window.location.search);
}

// The graph view around an edge's source, with the edge selected.
export function edgeHref(edgeId, source) {
  const q = new URLSearchParams({ service: source || edgeId.split("->")[0], edge: edgeId });
  return `/ui?${q}`;
}

function failure(root, err) {
  clear(root, h("p", { class: "error", id: "error" }, err.message));
}

export async function triageView(root, config) {
  const p = params();
  const service = p.get("service") || "";
  const windowLen = p.get("window") || "15m";
  const input = h("input", { name: "service", id: "ctl-service", value: service, size: 28, required: true });
  const win = h("input", { name: "window", id: "ctl-window", value: windowLen, size: 6 });
  const form = h("form", { class: "controls", method: "get", action: "/ui/triage" }, h("label", {}, "service ", input), h("label", {}, "window ", win), h("button", { type: "submit" }, "Triage"));
  const out = h("div", { id: "triage" });
  clear(root, h("h1", {}, "Triage"), form, out);
  if (!service) {
    clear(out, h("p", { class: "muted" }, "Name a service to rank what changed around it."));
    return;
  }
  try {
    const body = await api("/triage", { service, window: windowLen });
    const rows = body.findings.map((f) => [
      h("span", { class: `severity severity-${f.severity}` }, f.severity),
      f.kind,
      f.summary,
      f.edge ? h("a", { href: edgeHref(f.edge), class: "finding-edge" }, f.edge) : "–",
      (f.evidence.failed_traces || []).map((t) => h("div", {}, traceLinks(t, config))),
      fmt.num(f.score, 2),
    ]);
    clear(
      out,
      h("p", {}, `${body.service}: ${body.findings.length} findings over ${fmt.num(body.window.observed_seconds, 0)} s observed, against the ${fmt.num(body.baseline.seconds, 0)} s before. `, h("a", { href: `/ui?service=${encodeURIComponent(body.service)}` }, "graph")),
      body.findings.length ? table(["severity", "kind", "finding", "edge", "failed traces", "score"], rows, { class: "findings" }) : h("p", {}, "Nothing stands out."),
    );
  } catch (err) {
    failure(out, err);
  }
}

export async function coverageView(root) {
  const p = params();
  const namespace = p.get("namespace") || "";
  const windowLen = p.get("window") || "15m";
  const ns = h("input", { name: "namespace", id: "ctl-namespace", value: namespace, size: 14, placeholder: "any" });
  const win = h("input", { name: "window", id: "ctl-window", value: windowLen, size: 6 });
  const form = h("form", { class: "controls", method: "get", action: "/ui/coverage" }, h("label", {}, "namespace ", ns), h("label", {}, "window ", win), h("button", { type: "submit" }, "Show"));
  const out = h("div", { id: "coverage" });
  clear(root, h("h1", {}, "Coverage: where a waypoint would buy most visibility"), form, out);
  try {
    const body = await api("/coverage", { namespace, window: windowLen, limit: 500 });
    const rows = body.blind_spots.map((b) => [
      h("a", { href: edgeHref(b.edge, b.source), class: "blind-edge" }, `${b.source} → ${b.target}`),
      fmt.bytes(b.bytes),
      fmt.num(b.connections),
      fmt.pct(b.mtls_share),
      h("span", { class: "bar" }, h("span", { class: "bar-fill", style: `width:${Math.round((b.share_of_blind_bytes || 0) * 100)}%` }), ` ${fmt.pct(b.share_of_blind_bytes)}`),
    ]);
    clear(
      out,
      facts([
        ["L7 coverage by bytes", fmt.pct(body.l7_coverage_by_bytes)],
        ["bytes no waypoint saw", `${fmt.bytes(body.blind_bytes)} of ${fmt.bytes(body.total_bytes)}`],
        ["blind edges", `${fmt.num(body.page.total)}${body.page.truncated ? ` (showing ${body.blind_spots.length})` : ""}`],
      ]),
      rows.length ? table(["L4-only edge", "bytes", "connections", "mTLS", "share of blind bytes"], rows, { class: "blind-spots" }) : h("p", {}, "Every byte in this window went through a waypoint."),
    );
  } catch (err) {
    failure(out, err);
  }
}

function l4Summary(l4) {
  if (!l4) return "no L4 report";
  return `${fmt.num(l4.connections_opened)} conns, ${fmt.bytes(l4.bytes_sent)} ↑ ${fmt.bytes(l4.bytes_received)} ↓, mTLS ${fmt.pct(l4.mtls_share, 0)}`;
}

// Hops in call order: depth-first from the roots, children by start time.
function ordered(hops) {
  const ids = new Set(hops.map((x) => x.span_id));
  const children = new Map();
  for (const hop of hops) {
    const parent = ids.has(hop.parent_span_id) ? hop.parent_span_id : "";
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(hop);
  }
  for (const list of children.values()) list.sort((a, b) => a.start.localeCompare(b.start));
  const out = [];
  const walk = (parent, depth) => {
    for (const hop of children.get(parent) || []) {
      out.push([hop, depth]);
      walk(hop.span_id, depth + 1);
    }
  };
  walk("", 0);
  return out;
}

export async function traceView(root, config, traceId) {
  const out = h("div", { id: "trace" });
  clear(root, h("h1", {}, `Trace ${traceId}`), out);
  try {
    const body = await api(`/traces/${encodeURIComponent(traceId)}`);
    const hops = ordered(body.hops).map(([hop, depth]) => [
      h("span", { style: `padding-left:${depth * 1.2}em` }, depth ? "↳ " : "", h("a", { href: edgeHref(`${hop.source}->${hop.target}`, hop.source) }, `${hop.source} → ${hop.target}`)),
      hop.via ? `⬡ ${hop.via}` : "–",
      fmt.time(hop.start),
      fmt.ms(hop.duration_ms),
      h("span", { class: hop.error_cause ? "error" : "" }, hop.status_code || "–", hop.error_cause ? ` (${hop.error_cause})` : ""),
      hop.provenance,
      l4Summary(hop.l4),
    ]);
    const dark = body.dark_hops.map((e) => [h("a", { href: edgeHref(e.id, e.source) }, `${e.source} → ${e.target}`), l4Summary(e.l4)]);
    const external = config.traceUrlTemplate
      ? h("p", {}, h("a", { href: config.traceUrlTemplate.replaceAll("{trace_id}", encodeURIComponent(body.trace_id)), target: "_blank", rel: "noopener noreferrer", class: "external-trace-link" }, "Open in your tracing backend ↗"))
      : null;
    clear(
      out,
      external,
      h("h2", {}, "Hops, in call order, with what ztunnel saw on each"),
      table(["hop", "waypoint", "start", "duration", "status", "provenance", "L4 on this edge"], hops, { class: "hops" }),
      h("h2", {}, "L4-only edges beside this trace (no spans: a waypoint would show them)"),
      dark.length ? table(["edge", "L4"], dark, { class: "dark-hops" }) : h("p", { class: "muted" }, "None: every edge around this trace has L7."),
    );
  } catch (err) {
    failure(out, err);
  }
}
