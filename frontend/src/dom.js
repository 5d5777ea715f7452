// A tiny element builder: text is always set as text (never parsed as HTML), so data from the API
// cannot inject markup.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    // Through the CSSOM, which the page's Content-Security-Policy (no inline styles) allows.
    else if (key === "style") el.style.cssText = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined));
  return el;
}

const UNITS = ["B", "KB", "MB", "GB", "TB"];

export const fmt = {
  num(n, digits = 0) {
    if (n === null || n === undefined) return "–";
    return Number(n).toLocaleString("en-US", { maximumFractionDigits: digits });
  },
  rate(n) {
    if (n === null || n === undefined) return "–";
    return n >= 100 ? fmt.num(n, 0) : n >= 1 ? fmt.num(n, 1) : fmt.num(n, 3);
  },
  pct(share, digits = 1) {
    if (share === null || share === undefined) return "–";
    return `${(share * 100).toFixed(digits)} %`;
  },
  bytes(n) {
    if (n === null || n === undefined) return "–";
    let i = 0;
    let v = Number(n);
    while (v >= 1000 && i < UNITS.length - 1) {
      v /= 1000;
      i += 1;
    }
    return `${i === 0 ? v : v.toFixed(1)} ${UNITS[i]}`;
  },
  ms(n) {
    return n === null || n === undefined ? "–" : `${fmt.num(n, n < 10 ? 2 : 1)} ms`;
  },
  time(iso) {
    return iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z") : "–";
  },
};

export function table(headers, rows, attrs = {}) {
  return h(
    "table",
    attrs,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c))))),
  );
}

// key/value rows: [[label, value], ...]
export function facts(pairs, attrs = {}) {
  return h(
    "dl",
    { class: "facts", ...attrs },
    pairs.filter((p) => p).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
  );
}
