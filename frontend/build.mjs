// Builds what the browser loads into app/ui/static/ from the pinned packages in
// package-lock.json (`make ui` runs `npm ci` first):
// - vendor/: files copied as published (Swagger UI for /docs);
// - app.js, app.css: the web view (src/), bundled and minified by esbuild with the packages it
//   imports (Cytoscape.js, cytoscape-dagre), their licences collected in app.LICENSES.txt.
// Every package that ships is recorded with its version, licence and integrity in
// app/ui/static/vendor/VENDORED.json.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const staticDir = join(here, "..", "app", "ui", "static");
const out = join(staticDir, "vendor");
const lock = JSON.parse(readFileSync(join(here, "package-lock.json"), "utf8"));

// The packages bundled into app.js, and what they themselves bundle.
const BUNDLED = {
  cytoscape: "",
  "cytoscape-dagre": "includes @dagrejs/dagre and @dagrejs/graphlib (MIT), as cytoscape-dagre publishes them",
};

function locked(name) {
  const pkgDir = join(here, "node_modules", name);
  const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
  const entry = lock.packages[`node_modules/${name}`];
  if (!entry || entry.version !== pkg.version) {
    throw new Error(`${name}: installed ${pkg.version} is not the locked version; run npm ci`);
  }
  return { pkgDir, pkg, entry };
}

const VENDORED = {
  "swagger-ui-dist": ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"],
};

const record = [];
for (const [name, files] of Object.entries(VENDORED)) {
  const pkgDir = join(here, "node_modules", name);
  const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
  const locked = lock.packages[`node_modules/${name}`];
  if (!locked || locked.version !== pkg.version) {
    throw new Error(`${name}: installed ${pkg.version} is not the locked version; run npm ci`);
  }
  const dest = join(out, name);
  mkdirSync(dest, { recursive: true });
  for (const file of files) copyFileSync(join(pkgDir, file), join(dest, file));
  for (const legal of ["LICENSE", "NOTICE"]) {
    if (existsSync(join(pkgDir, legal))) copyFileSync(join(pkgDir, legal), join(dest, legal));
  }
  record.push({ package: name, version: pkg.version, license: pkg.license, integrity: locked.integrity, files });
}
await build({
  entryPoints: [join(here, "src", "main.js"), join(here, "src", "app.css")],
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  legalComments: "none",
  outdir: staticDir,
  entryNames: "app",
  logLevel: "warning",
});
const licences = [];
for (const [name, note] of Object.entries(BUNDLED)) {
  const { pkgDir, pkg, entry } = locked(name);
  const text = readFileSync(join(pkgDir, "LICENSE"), "utf8").trim();
  licences.push(`${name} ${pkg.version} (${pkg.license})${note ? `, ${note}` : ""}\n\n${text}\n`);
  record.push({ package: name, version: pkg.version, license: pkg.license, integrity: entry.integrity, bundled_into: "app.js", note: note || undefined });
}
writeFileSync(join(staticDir, "app.LICENSES.txt"), licences.join("\n" + "-".repeat(72) + "\n\n"));
writeFileSync(join(out, "VENDORED.json"), JSON.stringify(record, null, 2) + "\n");
console.log(`vendored ${record.map((r) => `${r.package}@${r.version}`).join(", ")} into ${out}`);
