// Builds what the browser loads into app/ui/static/ from the pinned packages in
// package-lock.json (`make ui` runs `npm ci` first). Every vendored file is recorded with its
// package, version and licence in app/ui/static/vendor/VENDORED.json, its licence text beside it.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "app", "ui", "static", "vendor");
const lock = JSON.parse(readFileSync(join(here, "package-lock.json"), "utf8"));

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
writeFileSync(join(out, "VENDORED.json"), JSON.stringify(record, null, 2) + "\n");
console.log(`vendored ${record.map((r) => `${r.package}@${r.version}`).join(", ")} into ${out}`);
