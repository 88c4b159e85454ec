// Bytes used under a directory (what an instance's files take), walked without following links.

import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";

export async function diskUsage(dir: string, maxEntries = 200_000): Promise<number> {
  let total = 0;
  let seen = 0;
  const stack = [dir];
  while (stack.length > 0 && seen < maxEntries) {
    const d = stack.pop()!;
    let names: string[];
    try {
      names = await readdir(d);
    } catch {
      continue;
    }
    for (const name of names) {
      if (++seen > maxEntries) break;
      const p = join(d, name);
      try {
        const st = await lstat(p);
        total += st.blocks * 512;
        if (st.isDirectory()) stack.push(p);
      } catch {}
    }
  }
  return total;
}
