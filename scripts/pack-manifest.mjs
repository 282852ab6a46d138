// `npm pack` hooks (prepack: strip, postpack: restore) for herd and @herd/client: the packed
// package.json carries no `prepare`. In a checkout `prepare` builds dist/ on `npm install`; in a
// tarball dist/ is already built, and an install script there only makes npm warn that it is
// not covered by allowScripts. The original manifest waits in .pack-manifest.json (gitignored)
// and is put back byte for byte; a strip after a pack that failed half-way restores it first.
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";

const [step] = process.argv.slice(2);
const saved = ".pack-manifest.json";
if (step === "strip") {
  if (existsSync(saved)) renameSync(saved, "package.json");
  const text = readFileSync("package.json", "utf8");
  const manifest = JSON.parse(text);
  delete manifest.scripts.prepare;
  writeFileSync(saved, text);
  writeFileSync("package.json", `${JSON.stringify(manifest, null, 2)}\n`);
} else if (step === "restore") {
  if (existsSync(saved)) renameSync(saved, "package.json");
} else {
  process.stderr.write("usage: node scripts/pack-manifest.mjs strip|restore\n");
  process.exit(2);
}
