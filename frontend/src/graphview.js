// The graph view (/ui): controls mirrored in the URL, the graph, the legend and the evidence panel.
import cytoscape from "cytoscape";
import dagre from "cytoscape-dagre";

import { api, ApiError } from "./api.js";
import { clear, fmt, h } from "./dom.js";
import { edgePanel, nodePanel } from "./panel.js";
import { COVERAGE, CROSS_ZONE, ERROR_BANDS, NO_ERROR_DATA, NODE_KINDS, elements, stylesheet } from "./style.js";

cytoscape.use(dagre);

// Layout limits, measured in headless Chromium on a generated mesh (README "Web view"): dagre with
// namespace boxes took 0.8 s at 100 nodes and 3.9 s at 216, flat dagre 0.7 s at 216. So up to
// GROUPED_LAYOUT_MAX_NODES nodes the layered layout draws namespace boxes; up to
// LAYERED_LAYOUT_MAX_NODES it is layered without them (the namespace is in each label); above
// that a concentric layout (linear in the nodes) takes over. The page asks /graph for the
// busiest EDGE_LIMIT edges.
export const GROUPED_LAYOUT_MAX_NODES = 80;
export const LAYERED_LAYOUT_MAX_NODES = 300;
export const EDGE_LIMIT = 1000;

const DEFAULTS = {
  service: "",
  namespace: "",
  depth: "2",
  direction: "both",
  window: "15m",
  level: "service",
  refresh: "15",
  edge: "",
};
const WINDOWS = ["5m", "15m", "1h", "6h", "24h", "7d"];
const REFRESH = [["0", "paused"], ["5", "every 5 s"], ["15", "every 15 s"], ["30", "every 30 s"], ["60", "every minute"]];

function readState() {
  const params = new URLSearchParams(window.location.search);
  const state = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS)) if (params.has(key)) state[key] = params.get(key);
  return state;
}

function writeState(state) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(state)) {
    if (value !== "" && value !== DEFAULTS[key]) params.set(key, value);
  }
  const query = params.toString();
  const url = `${window.location.pathname}${query ? `?${query}` : ""}`;
  if (url !== `${window.location.pathname}${window.location.search}`) window.history.replaceState(null, "", url);
}

function select(name, options, value) {
  return h(
    "select",
    { name, id: `ctl-${name}` },
    options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)),
  );
}

function legend() {
  const swatch = (colour) => h("span", { class: "swatch", style: `background:${colour}` });
  return h(
    "div",
    { class: "legend", id: "legend" },
    h("h3", {}, "Legend"),
    h("ul", {}, Object.entries(NODE_KINDS).map(([kind, k]) => h("li", {}, h("span", { class: `shape shape-${kind}`, style: `background:${k.colour}` }), ` ${k.label}`))),
    h("ul", {}, Object.entries(COVERAGE).map(([cov, c]) => h("li", {}, h("span", { class: `line line-${cov}` }), ` ${c.label}`)), h("li", {}, h("span", { class: "line line-cross-zone" }), ` ${CROSS_ZONE.label}`)),
    h("ul", {}, [...ERROR_BANDS, NO_ERROR_DATA].map((b) => h("li", {}, swatch(b.colour), ` ${b.label}`))),
    h("p", {}, "Colour: L7 error share, or failed-connection share on L4-only edges. Width: requests/s (L4 only: bytes/s). ⬡ badge: the waypoint the call went through."),
  );
}

export async function graphView(root, config) {
  const state = readState();
  let timer = null;
  let graph = null;
  let cy = null;
  let shownIds = "";

  const status = h("span", { id: "status", class: "status" }, "loading…");
  const notice = h("div", { id: "notice", class: "notice" });
  const panel = h("aside", { id: "panel", class: "panel" }, h("p", { class: "muted" }, "Click an edge for its L7 and L4 evidence, or a node for its rates."));
  const container = h("div", { id: "cy", class: "cy", role: "img", "aria-label": "service graph" });
  const services = h("datalist", { id: "service-names" });
  const service = h("input", { name: "service", id: "ctl-service", list: "service-names", value: state.service, placeholder: "all (type to search)", autocomplete: "off", size: 28 });
  const namespace = h("input", { name: "namespace", id: "ctl-namespace", value: state.namespace, placeholder: "any", size: 12 });
  const depth = select("depth", ["1", "2", "3", "4", "5", "6"].map((d) => [d, d]), state.depth);
  const direction = select("direction", [["both", "both"], ["downstream", "what it calls"], ["upstream", "who calls it"]], state.direction);
  const windowSel = select("window", WINDOWS.map((w) => [w, `last ${w}`]), state.window);
  const level = select("level", [["service", "services"], ["workload", "workloads"]], state.level);
  const refresh = select("refresh", REFRESH, state.refresh);
  const pause = h("button", { type: "button", id: "pause" }, state.refresh === "0" ? "Resume" : "Pause");

  const form = h(
    "form",
    { class: "controls", id: "controls", onsubmit: (ev) => { ev.preventDefault(); apply(); } },
    h("label", {}, "service ", service), services,
    h("label", {}, "namespace ", namespace),
    h("label", {}, "depth ", depth),
    h("label", {}, "direction ", direction),
    h("label", {}, "window ", windowSel),
    h("label", {}, "level ", level),
    h("label", {}, "refresh ", refresh),
    pause,
    h("button", { type: "submit", id: "apply" }, "Show"),
    status,
  );
  clear(root, form, notice, h("div", { class: "graph-layout" }, h("div", { class: "graph-wrap" }, container, legend()), panel));

  for (const el of [depth, direction, windowSel, level]) el.addEventListener("change", () => apply());
  service.addEventListener("change", () => apply());
  refresh.addEventListener("change", () => { state.refresh = refresh.value; pause.textContent = state.refresh === "0" ? "Resume" : "Pause"; writeState(state); schedule(); });
  pause.addEventListener("click", () => {
    state.refresh = state.refresh === "0" ? "15" : "0";
    refresh.value = state.refresh;
    pause.textContent = state.refresh === "0" ? "Resume" : "Pause";
    writeState(state);
    schedule();
  });

  function apply() {
    const changed = state.service !== service.value.trim() || state.level !== level.value;
    Object.assign(state, {
      service: service.value.trim(),
      namespace: namespace.value.trim(),
      depth: depth.value,
      direction: direction.value,
      window: windowSel.value,
      level: level.value,
    });
    if (changed) state.edge = "";
    writeState(state);
    load();
  }

  function schedule() {
    if (timer) clearTimeout(timer);
    timer = null;
    const seconds = Number(state.refresh);
    if (seconds > 0) timer = setTimeout(load, seconds * 1000);
  }

  function showSelection() {
    if (!graph) return;
    const edge = state.edge && graph.edges.find((e) => e.id === state.edge);
    if (edge) {
      clear(panel, edgePanel(edge, config));
      if (cy) {
        cy.elements().unselect();
        cy.getElementById(edge.id).select();
      }
    }
  }

  function focusOn(nodeId) {
    service.value = nodeId;
    apply();
  }

  function render() {
    const grouped = graph.nodes.length <= GROUPED_LAYOUT_MAX_NODES;
    const layered = graph.nodes.length <= LAYERED_LAYOUT_MAX_NODES;
    const focus = state.service ? graph.nodes.find((n) => n.id === state.service || n.name === state.service)?.id : null;
    const els = elements(graph, focus, grouped);
    const ids = els.map((e) => e.data.id).sort().join("|");
    if (!cy) {
      cy = cytoscape({ container, style: stylesheet(), elements: [], wheelSensitivity: 0.3, minZoom: 0.05, maxZoom: 4 });
      cy.on("tap", "edge", (ev) => {
        state.edge = ev.target.id();
        writeState(state);
        showSelection();
      });
      cy.on("tap", "node", (ev) => {
        const node = graph.nodes.find((n) => n.id === ev.target.id());
        if (!node) return;
        state.edge = "";
        writeState(state);
        clear(panel, nodePanel(node, graph, focusOn));
      });
      window.meshstitchGraph = cy; // for tests and the curious: the live Cytoscape instance
    }
    if (ids === shownIds) {
      // Same shape: update the data in place and keep the layout the user may have arranged.
      cy.batch(() => {
        for (const el of els) cy.getElementById(el.data.id).data(el.data);
      });
    } else {
      cy.elements().remove();
      cy.add(els);
      const layout = layered
        ? { name: "dagre", rankDir: "LR", nodeSep: 30, rankSep: 150, padding: 20, animate: false }
        : { name: "concentric", concentric: (n) => n.degree(), levelWidth: () => 2, padding: 20, animate: false };
      const started = performance.now();
      cy.layout(layout).run();
      cy.fit(undefined, 30);
      container.dataset.layoutMs = String(Math.round(performance.now() - started));
      shownIds = ids;
    }
    container.dataset.layout = grouped ? "grouped" : layered ? "layered" : "concentric";
    container.dataset.nodes = String(graph.nodes.length);
    container.dataset.edges = String(graph.edges.length);
    const w = graph.window;
    const parts = [
      `Rates divide by the ${fmt.num(w.observed_seconds, 0)} s observed since ${fmt.time(w.observed_from)} (window: ${fmt.num(w.seconds, 0)} s).`,
    ];
    if (graph.page && graph.page.truncated) {
      parts.push(`Showing the busiest ${fmt.num(graph.edges.length)} of ${fmt.num(graph.page.total)} edges.`);
    }
    if (!grouped && layered) parts.push(`More than ${GROUPED_LAYOUT_MAX_NODES} nodes: layered without namespace boxes (namespace in each label).`);
    if (!layered) parts.push(`More than ${LAYERED_LAYOUT_MAX_NODES} nodes: concentric layout (by degree), namespace in each label.`);
    if (!graph.edges.length) parts.push("No traffic in this window.");
    clear(notice, parts.join(" "));
    showSelection();
  }

  async function load() {
    if (timer) clearTimeout(timer);
    timer = null;
    status.textContent = "loading…";
    try {
      const params = {
        service: state.service,
        namespace: state.namespace,
        depth: state.service ? state.depth : null,
        direction: state.service ? state.direction : null,
        window: state.window,
        level: state.level,
        limit: EDGE_LIMIT,
      };
      graph = await api("/graph", params);
      render();
      status.textContent = `updated ${new Date().toLocaleTimeString()}`;
      root.dataset.loaded = String((Number(root.dataset.loaded) || 0) + 1);
    } catch (err) {
      status.textContent = "";
      const suggestions = err instanceof ApiError && err.body && err.body.suggestions;
      clear(
        notice,
        h("strong", { class: "error" }, err.message),
        suggestions && suggestions.length ? [" Did you mean: ", suggestions.map((s, i) => [i ? ", " : "", h("a", { href: `/ui?service=${encodeURIComponent(s)}` }, s)])] : null,
      );
      root.dataset.failed = String((Number(root.dataset.failed) || 0) + 1);
    }
    schedule();
  }

  api("/services", { window: state.window, level: state.level, limit: 10000 })
    .then((body) => clear(services, body.services.map((s) => h("option", { value: s.id }))))
    .catch(() => {});
  await load();
}
