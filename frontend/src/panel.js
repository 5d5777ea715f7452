// The evidence of one edge (or node) beside the graph: what L7 and L4 each saw, why the edge
// exists, pairing health, and the exemplar traces.
import { facts, fmt, h, table } from "./dom.js";
import { COVERAGE, errorBand, errorShare } from "./style.js";

export function traceLinks(traceId, config) {
  const links = [h("a", { href: `/ui/traces/${traceId}`, class: "trace-link" }, traceId.slice(0, 16) + "…")];
  if (config.traceUrlTemplate) {
    links.push(
      " ",
      h(
        "a",
        {
          href: config.traceUrlTemplate.replaceAll("{trace_id}", encodeURIComponent(traceId)),
          class: "external-trace-link",
          target: "_blank",
          rel: "noopener noreferrer",
        },
        "open in tracing ↗",
      ),
    );
  }
  return links;
}

function counts(map) {
  const entries = Object.entries(map || {}).sort((a, b) => b[1] - a[1]);
  if (!entries.length) return "none";
  return entries.map(([k, v]) => `${k}: ${fmt.num(v)}`).join(", ");
}

function l7Section(l7) {
  if (!l7) {
    return h("section", { class: "layer l7" }, h("h3", {}, "L7 (waypoint)"), h("p", { class: "muted" }, "No waypoint saw this edge: requests, errors and latency are unknown."));
  }
  const lat = l7.latency_ms || {};
  return h(
    "section",
    { class: "layer l7" },
    h("h3", {}, "L7 (waypoint)"),
    facts([
      ["requests", `${fmt.num(l7.requests)}${l7.exact ? "" : " (estimated from sampled spans)"}`],
      ["rate", `${fmt.rate(l7.rps)} req/s`],
      ["errors", `${fmt.num(l7.errors)} (${fmt.pct(l7.error_rate, 2)})`],
      ["errors by cause", counts(l7.errors_by_cause)],
      ["status codes", counts(l7.status_codes)],
      ["latency p50", fmt.ms(lat.p50)],
      ["latency p95", fmt.ms(lat.p95)],
      ["latency p99", fmt.ms(lat.p99)],
      ["latency from", lat.from || "–"],
      ["counts from", l7.counts_from],
      ["sampled spans", `${fmt.num(l7.spans)} (${fmt.pct(l7.sampling_share, 1)} of requests)`],
    ]),
  );
}

function l4Section(l4) {
  if (!l4) {
    return h("section", { class: "layer l4" }, h("h3", {}, "L4 (ztunnel)"), h("p", { class: "muted" }, "No ztunnel reported this edge."));
  }
  return h(
    "section",
    { class: "layer l4" },
    h("h3", {}, "L4 (ztunnel)"),
    facts([
      ["connections", `${fmt.num(l4.connections_opened)} opened, ${fmt.num(l4.connections_closed)} closed`],
      ["failed", `${fmt.num(l4.connections_failed)}${l4.connections_failed ? ` (${counts(l4.failures)})` : ""}`],
      ["bytes sent", fmt.bytes(l4.bytes_sent)],
      ["bytes received", fmt.bytes(l4.bytes_received)],
      ["mTLS", fmt.pct(l4.mtls_share, 1)],
      ["principals", l4.principals.length ? h("ul", { class: "principals" }, l4.principals.map((p) => h("li", {}, p))) : "none"],
    ]),
  );
}

function zone(name) {
  return name || "unknown";
}

function zonesSection(z) {
  if (!z) return null;
  return h(
    "section",
    { class: "zones" },
    h("h3", {}, "Zones (L4 bytes)"),
    facts([
      ["cross-zone", `${fmt.bytes(z.cross_zone_bytes)} (${fmt.pct(z.cross_zone_share)} of bytes with known zones)`],
      ["caused by the waypoint", fmt.bytes(z.detour_bytes)],
      z.unknown_bytes ? ["zone unknown", fmt.bytes(z.unknown_bytes)] : null,
      z.estimated_bytes ? ["split by estimate", fmt.bytes(z.estimated_bytes)] : null,
    ]),
    z.paths.length
      ? table(
          ["path", "bytes", "cross-zone", "detour"],
          z.paths.map((p) => [
            p.via_waypoint ? `${zone(p.client_zone)} → ⬡ ${zone(p.waypoint_zone)} → ${zone(p.server_zone)}` : `${zone(p.client_zone)} → ${zone(p.server_zone)}`,
            fmt.bytes(p.bytes),
            fmt.bytes(p.cross_zone_bytes),
            fmt.bytes(p.detour_bytes),
          ]),
          { class: "zone-paths" },
        )
      : null,
  );
}

function provenanceSection(edge) {
  const p = edge.provenance || { evidence: {}, candidates: [] };
  const evidence = Object.entries(p.evidence || {});
  return h(
    "section",
    { class: "provenance" },
    h("h3", {}, "Why this edge exists"),
    evidence.length
      ? table(["evidence", "count"], evidence.map(([k, v]) => [k, fmt.num(v)]))
      : h("p", { class: "muted" }, edge.l4 && !edge.l7 ? "ztunnel's L4 metrics alone." : "no attribution recorded"),
    p.candidates && p.candidates.length
      ? [h("p", {}, "Ambiguous caller; candidates:"), table(["source", "share"], p.candidates.map((c) => [c.source, fmt.pct(c.share)]))]
      : null,
    h("h3", {}, "Pairing health"),
    facts([
      ["unpaired spans", fmt.num(edge.unpaired)],
      ["late spans", fmt.num(edge.late)],
      ["evicted before pairing", fmt.num(edge.evicted)],
    ]),
  );
}

export function edgePanel(edge, config) {
  const band = errorBand(errorShare(edge));
  return h(
    "div",
    { class: "edge-panel", "data-edge": edge.id },
    h("h2", {}, `${edge.source} → ${edge.target}`),
    h(
      "p",
      { class: "chips" },
      h("span", { class: `chip coverage-${edge.coverage}` }, COVERAGE[edge.coverage]?.label || edge.coverage),
      " ",
      h("span", { class: "chip", style: null }, `protocol ${edge.protocol}`),
      " ",
      edge.via ? h("span", { class: "chip via" }, `⬡ via ${edge.via}`) : null,
      " ",
      h("span", { class: "chip" }, band.label),
      edge.zones && edge.zones.cross_zone_bytes ? [" ", h("span", { class: "chip cross-zone" }, `⇄ ${fmt.bytes(edge.zones.cross_zone_bytes)} cross-zone`)] : null,
    ),
    h("div", { class: "layers" }, l7Section(edge.l7), l4Section(edge.l4)),
    zonesSection(edge.zones),
    h(
      "section",
      { class: "exemplars" },
      h("h3", {}, "Exemplar traces"),
      edge.exemplars && edge.exemplars.length
        ? table(
            ["kind", "trace", "duration", "status"],
            edge.exemplars.map((e) => [e.kind, h("span", {}, traceLinks(e.trace_id, config)), fmt.ms(e.duration_ms), e.status_code || "–"]),
            { class: "exemplar-table" },
          )
        : h("p", { class: "muted" }, edge.l7 ? "No sampled trace kept for this edge in the window." : "L4 only: no traces."),
    ),
    provenanceSection(edge),
  );
}

export function nodePanel(node, graph, onFocus) {
  return h(
    "div",
    { class: "node-panel", "data-node": node.id },
    h("h2", {}, node.id),
    facts([
      ["kind", node.kind],
      ["requests in", `${fmt.rate(node.rps_in)} req/s, ${fmt.num(node.errors_in)} errors`],
      ["requests out", `${fmt.rate(node.rps_out)} req/s`],
      ["bytes in", fmt.bytes(node.bytes_in)],
      ["bytes out", fmt.bytes(node.bytes_out)],
      ["other names", node.aliases && node.aliases.length ? node.aliases.join(", ") : "none"],
      ["edges here", String(graph.edges.filter((e) => e.source === node.id || e.target === node.id).length)],
    ]),
    h(
      "p",
      {},
      h("button", { type: "button", class: "focus-node", onclick: () => onFocus(node.id) }, "Centre the graph here"),
      " ",
      h("a", { href: `/ui/triage?service=${encodeURIComponent(node.id)}` }, "Triage this service"),
    ),
  );
}
