// Several processes opening one fresh SQLite data directory at once (two controllers, or a
// controller and its health managers starting together): every one must open and migrate it.

import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { openDatabase } from "../../controller/src/db/open.ts";
import { migrations } from "../../controller/src/db/migrations.ts";

const root = resolve(import.meta.dir, "../..");
const bun = join(root, "node_modules/.bin/bun");
const base = mkdtempSync(join(tmpdir(), "skiff-dbrace-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

const opener = `
import { openDatabase } from ${JSON.stringify(join(root, "controller/src/db/open.ts"))};
try { const db = await openDatabase({ dataDir: process.argv[1] }); await db.close(); console.log("ok"); }
catch (e) { console.log("FAILED: " + e.message); }
`;

test("4 processes opening a fresh data directory at once all succeed, 5 times over (issue 7)", async () => {
  for (let trial = 0; trial < 5; trial++) {
    const dir = join(base, `t${trial}`);
    const procs = Array.from({ length: 4 }, () => Bun.spawn([bun, "--eval", opener, dir], { stdout: "pipe", stderr: "pipe" }));
    const outs = await Promise.all(procs.map(async (p) => (await new Response(p.stdout).text()).trim() + (await new Response(p.stderr).text()).trim()));
    expect(outs).toEqual(["ok", "ok", "ok", "ok"]);
    const db = await openDatabase({ dataDir: dir });
    const applied = await db.all<{ version: number }>(`SELECT version FROM schema_migrations ORDER BY version`);
    expect(applied.map((r) => Number(r.version))).toEqual(migrations.map((m) => m.version));
    await db.close();
  }
}, 120_000);
