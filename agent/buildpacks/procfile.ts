// Anything else that says how to run itself: a Procfile with a `web:` line (a binary, a script).

import type { Buildpack } from "./buildpack.ts";

export const procfileBuildpack: Buildpack = {
  name: "procfile",
  aliases: ["binary"],
  detect: (app) => app.procfile?.web !== undefined,
  async compile(_app, ctx) {
    ctx.log("running the Procfile's web command as it is");
  },
  release: (app) => app.procfile?.web,
};
