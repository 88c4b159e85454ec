// Bun apps: a bun.lock/bun.lockb, a bunfig.toml, or `packageManager: bun@…` in package.json.

import { hasDependencies, type Buildpack } from "./buildpack.ts";

export const bunBuildpack: Buildpack = {
  name: "bun",
  detect: (app) =>
    app.files.has("bun.lock") ||
    app.files.has("bun.lockb") ||
    app.files.has("bunfig.toml") ||
    (app.packageJson?.packageManager ?? "").startsWith("bun"),
  async compile(app, ctx) {
    // No dependencies: nothing to fetch, so staging works offline.
    if (!hasDependencies(app.packageJson)) return ctx.log("no dependencies to install");
    await ctx.run([ctx.bunPath, "install", "--production"], "bun install");
  },
  release(app) {
    const pkg = app.packageJson;
    if (pkg?.scripts?.start) return "bun run start";
    if (pkg?.main) return `bun ${pkg.main}`;
    const entry = ["index.ts", "index.js", "server.ts", "server.js"].find((f) => app.files.has(f));
    return entry ? `bun ${entry}` : undefined;
  },
};
