// How the graph looks: the Okabe-Ito palette (safe for the common colour-vision deficiencies),
// with every colour also carried by a second channel (node shape, edge line style, labels) so
// nothing depends on colour alone.
export const OKABE_ITO = {
  black: "#000000",
  orange: "#E69F00",
  skyBlue: "#56B4E9",
  green: "#009E73",
  yellow: "#F0E442",
  blue: "#0072B2",
  vermillion: "#D55E00",
  purple: "#CC79A7",
  grey: "#999999",
};

export const NODE_KINDS = {
  service: { shape: "round-rectangle", colour: OKABE_ITO.skyBlue, label: "service" },
  workload: { shape: "ellipse", colour: OKABE_ITO.green, label: "workload" },
  waypoint: { shape: "round-triangle", colour: OKABE_ITO.blue, label: "waypoint" },
  gateway: { shape: "diamond", colour: OKABE_ITO.purple, label: "gateway" },
  external: { shape: "hexagon", colour: OKABE_ITO.yellow, label: "external" },
  unknown: { shape: "octagon", colour: "#DDDDDD", label: "unknown caller" },
  overflow: { shape: "star", colour: OKABE_ITO.orange, label: "overflow (past a cap)" },
};

export const COVERAGE = {
  full: { style: "solid", label: "full: L7 and L4 both seen" },
  l4_only: { style: "dashed", label: "L4 only: a blind spot (no waypoint)" },
  l7_only: { style: "dotted", label: "L7 only: no ztunnel report" },
};

// Error share bands: colour and the words the legend and panel use.
export const ERROR_BANDS = [
  { below: 0.001, colour: OKABE_ITO.blue, label: "errors < 0.1 %" },
  { below: 0.01, colour: OKABE_ITO.skyBlue, label: "errors < 1 %" },
  { below: 0.05, colour: OKABE_ITO.orange, label: "errors 1–5 %" },
  { below: Infinity, colour: OKABE_ITO.vermillion, label: "errors ≥ 5 %" },
];
export const NO_ERROR_DATA = { colour: OKABE_ITO.grey, label: "no requests or connections" };
// Edges whose bytes cross an availability zone (edge.zones, from ztunnel's locality labels or
// node topology): a halo around the line and a ⇄ in the label.
export const CROSS_ZONE = { colour: OKABE_ITO.purple, label: "⇄ bytes cross a zone (halo)" };

export function crossesZones(edge) {
  return Boolean(edge.zones && edge.zones.cross_zone_bytes > 0);
}

export function errorShare(edge) {
  if (edge.l7 && edge.l7.requests) return edge.l7.errors / edge.l7.requests;
  if (edge.l4 && edge.l4.connections_opened) {
    return (edge.l4.connections_failed || 0) / edge.l4.connections_opened;
  }
  return null;
}

export function errorBand(share) {
  if (share === null || share === undefined) return NO_ERROR_DATA;
  return ERROR_BANDS.find((b) => share < b.below);
}

// Width by rate: requests per second on L7 edges, else L4 bytes per second (in KB/s), on a log
// scale so one busy edge does not flatten the rest.
export function edgeWidth(edge, observedSeconds) {
  let rate = 0;
  if (edge.l7 && edge.l7.rps) rate = edge.l7.rps;
  else if (edge.l4 && observedSeconds > 0) {
    rate = (edge.l4.bytes_sent + edge.l4.bytes_received) / observedSeconds / 1000;
  }
  return Math.min(12, 1.5 + 2.2 * Math.log10(1 + rate));
}

export function shortName(id) {
  if (!id) return "";
  const slash = id.indexOf("/");
  return slash < 0 ? id : id.slice(slash + 1);
}

export function stylesheet() {
  const kinds = Object.entries(NODE_KINDS).map(([kind, k]) => ({
    selector: `node[kind = "${kind}"]`,
    style: { shape: k.shape, "background-color": k.colour },
  }));
  return [
    {
      selector: "node",
      style: {
        label: "data(label)",
        "font-size": 11,
        "font-family": "system-ui, sans-serif",
        color: "#1a1a1a",
        "text-valign": "bottom",
        "text-margin-y": 4,
        "text-wrap": "ellipsis",
        "text-max-width": 140,
        width: 30,
        height: 30,
        "border-width": 1.5,
        "border-color": "#333333",
      },
    },
    ...kinds,
    { selector: 'node[kind = "unknown"]', style: { "border-style": "dashed" } },
    { selector: "node.focus", style: { "border-width": 4, "border-color": OKABE_ITO.black } },
    {
      selector: ":parent",
      style: {
        shape: "round-rectangle",
        "background-color": "#F5F5F5",
        "border-color": "#AAAAAA",
        "border-width": 1,
        label: "data(label)",
        "text-valign": "top",
        "text-halign": "center",
        "text-margin-y": -4,
        "font-weight": "bold",
        color: "#555555",
        padding: 16,
      },
    },
    {
      selector: "edge",
      style: {
        "curve-style": "bezier",
        "target-arrow-shape": "triangle",
        "arrow-scale": 0.9,
        width: "data(width)",
        "line-color": "data(colour)",
        "target-arrow-color": "data(colour)",
        label: "data(label)",
        "font-size": 9,
        "font-family": "system-ui, sans-serif",
        "text-rotation": "autorotate",
        "text-wrap": "wrap",
        "text-background-color": "#FFFFFF",
        "text-background-opacity": 0.9,
        "text-background-padding": 2,
      },
    },
    { selector: 'edge[coverage = "full"]', style: { "line-style": "solid" } },
    {
      selector: 'edge[coverage = "l4_only"]',
      style: { "line-style": "dashed", "line-dash-pattern": [8, 5] },
    },
    {
      selector: 'edge[coverage = "l7_only"]',
      style: { "line-style": "dotted", "line-dash-pattern": [1, 4] },
    },
    {
      selector: "edge[?crossZone]",
      style: { "line-outline-width": 2.5, "line-outline-color": CROSS_ZONE.colour },
    },
    // The collapsed waypoint: a badge (bordered label) on the edge it sits on.
    {
      selector: "edge[via]",
      style: {
        "text-border-width": 1,
        "text-border-color": OKABE_ITO.blue,
        "text-border-opacity": 1,
        "text-background-shape": "round-rectangle",
      },
    },
    {
      selector: ":selected",
      style: {
        "overlay-color": OKABE_ITO.black,
        "overlay-opacity": 0.15,
        "overlay-padding": 6,
      },
    },
  ];
}

// The graph JSON (GET /graph) as Cytoscape elements: grouped, a compound node per namespace;
// else the namespace is in each node's label.
export function elements(graph, focusId, grouped = true) {
  const seconds = graph.window ? graph.window.observed_seconds : 0;
  const namespaces = grouped ? new Set(graph.nodes.map((n) => n.namespace)) : new Set();
  const out = [...namespaces].sort().map((ns) => ({
    group: "nodes",
    data: { id: `ns:${ns}`, label: ns, kind: "namespace" },
  }));
  for (const n of graph.nodes) {
    const data = { id: n.id, label: grouped ? n.name : n.id, kind: n.kind };
    if (grouped) data.parent = `ns:${n.namespace}`;
    out.push({ group: "nodes", data, classes: n.id === focusId ? "focus" : "" });
  }
  for (const e of graph.edges) {
    const band = errorBand(errorShare(e));
    const rate = e.l7 && e.l7.requests ? `${rateText(e.l7.rps)} rps` : "";
    const via = e.via ? `⬡ ${shortName(e.via)}` : "";
    const zones = crossesZones(e) ? `⇄ ${Math.round((e.zones.cross_zone_share || 0) * 100)} % x-zone` : "";
    const data = {
      id: e.id,
      source: e.source,
      target: e.target,
      coverage: e.coverage,
      colour: band.colour,
      width: edgeWidth(e, seconds),
      label: [[rate, via].filter(Boolean).join("  "), zones].filter(Boolean).join("\n"),
      crossZone: crossesZones(e),
    };
    if (e.via) data.via = e.via;
    out.push({ group: "edges", data });
  }
  return out;
}

function rateText(n) {
  if (n === null || n === undefined) return "–";
  return n >= 10 ? n.toFixed(0) : n >= 1 ? n.toFixed(1) : n.toFixed(2);
}
