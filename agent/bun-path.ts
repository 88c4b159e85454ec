// Instances and build commands find `bun` on PATH: the agent links its own binary (process.execPath,
// which npm installs as `bun.exe`) as <data>/bin/bun and bunx, and puts that directory first.

import { lstatSync, mkdirSync, readlinkSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";

export function linkBun(dataDir: string, bunPath = process.execPath): string {
  const bin = join(dataDir, "bin");
  mkdirSync(bin, { recursive: true, mode: 0o755 });
  for (const name of ["bun", "bunx"]) {
    const link = join(bin, name);
    const current = lstatSync(link, { throwIfNoEntry: false });
    if (current?.isSymbolicLink() && readlinkSync(link) === bunPath) continue;
    if (current) rmSync(link, { force: true });
    symlinkSync(bunPath, link);
  }
  return bin;
}
