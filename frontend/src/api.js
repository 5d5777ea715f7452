// Calls to meshstitch's own REST API (same origin only). With MESHSTITCH_API_TOKEN set the page asks
// for the token once, keeps it in this browser's localStorage and sends it as a bearer header; it
// never goes into a URL.
import { h } from "./dom.js";

const TOKEN_KEY = "meshstitch.api_token";

export class ApiError extends Error {
  constructor(status, title, detail, body) {
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.body = body;
  }
}

let asking = null;

function askToken(refused) {
  if (asking) return asking;
  asking = new Promise((resolve) => {
    const input = h("input", {
      type: "password",
      id: "token-input",
      name: "token",
      autocomplete: "current-password",
      required: true,
      size: 40,
    });
    const dialog = h(
      "dialog",
      { id: "token-dialog" },
      h(
        "form",
        { method: "dialog" },
        h("h2", {}, "API token"),
        h(
          "p",
          {},
          refused
            ? "meshstitch refused that token. Enter the value of MESHSTITCH_API_TOKEN:"
            : "This meshstitch asks for a token (MESHSTITCH_API_TOKEN). It is kept in this browser only and sent as a bearer header.",
        ),
        input,
        h("p", {}, h("button", { type: "submit", id: "token-submit" }, "Use token")),
      ),
    );
    dialog.addEventListener("close", () => {
      localStorage.setItem(TOKEN_KEY, input.value.trim());
      dialog.remove();
      asking = null;
      resolve();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
  return asking;
}

export function forgetToken() {
  localStorage.removeItem(TOKEN_KEY);
}

export async function ensureToken(config) {
  if (config.authRequired && !localStorage.getItem(TOKEN_KEY)) await askToken(false);
}

export async function api(path, params = {}) {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(key, value);
  }
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const headers = { accept: "application/json" };
    const token = localStorage.getItem(TOKEN_KEY);
    if (token) headers.authorization = `Bearer ${token}`;
    const response = await fetch(url, { headers, credentials: "omit", cache: "no-store" });
    if (response.status === 401) {
      await askToken(Boolean(token));
      continue;
    }
    const type = response.headers.get("content-type") || "";
    const body = type.includes("json") ? await response.json() : await response.text();
    if (!response.ok) {
      const problem = typeof body === "object" && body ? body : {};
      throw new ApiError(
        response.status,
        problem.title || response.statusText,
        problem.detail || (typeof body === "string" ? body : ""),
        problem,
      );
    }
    return body;
  }
  throw new ApiError(401, "Unauthorized", "the token was refused three times");
}
