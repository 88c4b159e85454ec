// Static sites: an index.html. The droplet carries skiff's own small file server (agent/static-server.ts).

import { copyFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Buildpack } from "./buildpack.ts";

export const STATIC_SERVER_IN_DROPLET = ".skiff/static-server.ts";

export const staticBuildpack: Buildpack = {
  name: "static",
  aliases: ["staticfile"],
  detect: (app) => app.files.has("index.html"),
  async compile(_app, ctx) {
    await mkdir(join(ctx.dir, ".skiff"), { recursive: true });
    await copyFile(ctx.staticServerPath, join(ctx.dir, STATIC_SERVER_IN_DROPLET));
    ctx.log("added skiff's static file server");
  },
  release: () => `bun ${STATIC_SERVER_IN_DROPLET}`,
};
