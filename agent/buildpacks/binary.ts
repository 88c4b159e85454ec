// Anything that says how to run itself (issue 17): an executable the user built (Go, Rust, C, a
// static binary…) or a script, started by the Procfile's web line or the manifest's `command`. Last
// in detection order: it claims what no language buildpack did. Cloud Foundry's binary_buildpack.

import { BuildpackError, type AppSnapshot, type Buildpack } from "./buildpack.ts";

/** The program a command runs when it is a file in the app (`./server`, `bin/server`), else undefined. */
export function programInApp(command: string): string | undefined {
  const first = command.trim().split(/\s+/)[0] ?? "";
  const path = first.replace(/^\.\//, "");
  if (!first.includes("/") || first.startsWith("/") || first.startsWith("$") || path.split("/").includes("..")) return undefined;
  return path;
}

const commandOf = (app: AppSnapshot) => app.startCommand?.trim() || app.procfile?.web;

export const binaryBuildpack: Buildpack = {
  name: "binary",
  aliases: ["procfile"],
  detect: (app) => commandOf(app) !== undefined,
  async compile(app, ctx) {
    const command = commandOf(app);
    const program = command && programInApp(command);
    if (!program) return ctx.log(`running "${command}" as it is`);
    const top = program.split("/")[0]!;
    if (!app.files.has(top))
      throw new BuildpackError(`the start command runs ./${program}, which is not in the app: build it into the folder you push (e.g. go build -o ${program}, cc -o ${program} main.c) and push again`);
    // as the build user, in its sandbox: an executable pushed from a file system without the x bit still runs
    await ctx.run(["/bin/sh", "-c", 'if [ ! -f "$1" ]; then echo "$1 is not a file" >&2; exit 3; fi; [ -x "$1" ] || { chmod a+x "$1" && echo "made $1 executable"; }', "check", program], `checking ./${program}`);
    ctx.log(`running ./${program}`);
  },
  release: (app) => commandOf(app),
};
