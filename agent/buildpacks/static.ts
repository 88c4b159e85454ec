// Static sites: an index.html. The droplet carries skiff's own small file server (agent/static-server.ts).

import { readFile, writeFile } from "node:fs/promises";
import { lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { isRealDir } from "../no-follow.ts";
import { BuildpackError, type Buildpack } from "./buildpack.ts";

export const STATIC_SERVER_IN_DROPLET = ".skiff/static-server.ts";

export const staticBuildpack: Buildpack = {
  name: "static",
  aliases: ["staticfile"],
  detect: (app) => app.files.has("index.html"),
  async compile(_app, ctx) {
    // compile runs inside the agent (as root on a host): it writes into the app's tree only through
    // real directories and never through a link the package planted (.skiff -> elsewhere)
    const dir = join(ctx.dir, ".skiff");
    try {
      if (!isRealDir(dir, "the app's .skiff")) mkdirSync(dir, { mode: 0o755 });
    } catch (err) {
      throw new BuildpackError(`${(err as Error).message}: skiff puts its static server there; remove it from the app`);
    }
    const target = join(ctx.dir, STATIC_SERVER_IN_DROPLET);
    const st = lstatSync(target, { throwIfNoEntry: false });
    if (st?.isDirectory()) throw new BuildpackError(`the app's ${STATIC_SERVER_IN_DROPLET} is a directory: remove it from the app`);
    if (st) unlinkSync(target); // a file or link the app shipped under skiff's name: replaced, not followed
    await writeFile(target, await readFile(ctx.staticServerPath), { flag: "wx", mode: 0o644 });
    ctx.log("added skiff's static file server");
  },
  release: () => `bun ${STATIC_SERVER_IN_DROPLET}`,
};
