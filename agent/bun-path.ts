// Instances and build commands find `bun` on PATH: the agent links its own binary (process.execPath,
// which npm installs as `bun.exe`) as <data>/bin/bun and bunx, and puts that directory first.

import { lstatSync, readlinkSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { traverseOnlyDir } from "../bus/private-state.ts";

export function linkBun(dataDir: string, bunPath = process.execPath): string {
  const bin = join(dataDir, "bin");
  traverseOnlyDir(bin, "the agent's bin directory"); // instances find bun here by name: search, no listing
  for (const name of ["bun", "bunx"]) {
    const link = join(bin, name);
    const current = lstatSync(link, { throwIfNoEntry: false });
    if (current?.isSymbolicLink() && readlinkSync(link) === bunPath) continue;
    if (current) rmSync(link, { force: true });
    symlinkSync(bunPath, link);
  }
  return bin;
}
