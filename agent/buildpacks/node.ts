// Node apps: a package.json (and not claimed by the Bun buildpack first).

import { hasDependencies, type Buildpack } from "./buildpack.ts";

export const nodeBuildpack: Buildpack = {
  name: "node",
  aliases: ["nodejs"],
  detect: (app) => app.files.has("package.json"),
  async compile(app, ctx) {
    if (!hasDependencies(app.packageJson)) return ctx.log("no dependencies to install");
    await ctx.run(["npm", "install", "--omit=dev", "--no-audit", "--no-fund"], "npm install");
  },
  release(app) {
    const pkg = app.packageJson;
    if (pkg?.scripts?.start) return "npm start";
    if (pkg?.main) return `node ${pkg.main}`;
    const entry = ["server.js", "index.js", "app.js"].find((f) => app.files.has(f));
    return entry ? `node ${entry}` : undefined;
  },
};
