// meshstitch's web view: one small page, routed by path, that reads the REST API of the server
// that served it. The server embeds its configuration as JSON (never as script).
import { ensureToken, forgetToken } from "./api.js";
import { h } from "./dom.js";
import { graphView } from "./graphview.js";
import { coverageView, traceView, triageView } from "./views.js";

const config = JSON.parse(document.getElementById("meshstitch-config").textContent);

function nav(active) {
  const link = (href, label, key) => h("a", { href, class: key === active ? "active" : "" }, label);
  const service = new URLSearchParams(window.location.search).get("service");
  const q = service ? `?service=${encodeURIComponent(service)}` : "";
  return h(
    "nav",
    { class: "top" },
    h("strong", { class: "brand" }, "meshstitch"),
    link(`/ui${q}`, "Graph", "graph"),
    link(`/ui/triage${q}`, "Triage", "triage"),
    link("/ui/coverage", "Coverage", "coverage"),
    h("a", { href: "/docs" }, "API"),
    config.authRequired ? h("button", { type: "button", class: "link", onclick: () => { forgetToken(); window.location.reload(); } }, "Forget token") : null,
    h("span", { class: "version" }, `v${config.version}`),
  );
}

async function start() {
  const path = window.location.pathname.replace(/\/+$/, "") || "/ui";
  const root = h("main", { id: "view" });
  let active = "graph";
  let run;
  const trace = path.match(/^\/ui\/traces\/([^/]+)$/);
  if (trace) {
    active = "";
    run = () => traceView(root, config, decodeURIComponent(trace[1]));
  } else if (path === "/ui/triage") {
    active = "triage";
    run = () => triageView(root, config);
  } else if (path === "/ui/coverage") {
    active = "coverage";
    run = () => coverageView(root, config);
  } else {
    run = () => graphView(root, config);
  }
  document.body.replaceChildren(nav(active), root);
  await ensureToken(config);
  await run();
  document.body.dataset.ready = "true";
}

start();
