// Bundles the router for Node: node router/build.mjs [outfile]   (default router/dist/router.mjs)
// Same as: ./node_modules/.bin/bun build router/main.ts --target=node --outfile router/dist/router.mjs --external uWebSockets.js --format=esm
import { execFileSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const outfile = resolve(process.argv[2] ?? join(root, "router", "dist", "router.mjs"));
execFileSync(
  join(root, "node_modules", ".bin", "bun"),
  ["build", join(root, "router", "main.ts"), "--target=node", "--outfile", outfile, "--external", "uWebSockets.js", "--format=esm"],
  { stdio: "inherit", cwd: root },
);
