// Opens the configured database (SQLite in the data dir, or PostgreSQL from SKIFF_DATABASE_URL)
// and brings its schema up to date.

import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Database } from "./database.ts";
import { migrate } from "./migrations.ts";
import { openSqlite } from "./sqlite.ts";
import { openPostgres } from "./postgres.ts";

export async function openDatabase(opts: { dataDir: string; databaseUrl?: string }): Promise<Database> {
  const url = opts.databaseUrl;
  let db: Database;
  if (url && /^postgres(ql)?:\/\//.test(url)) db = await openPostgres(url);
  else {
    const path = url ? url.replace(/^sqlite:\/\//, "") : join(opts.dataDir, "controller.sqlite");
    // a health manager may be the first process to start on a new data directory
    mkdirSync(dirname(path), { recursive: true });
    db = openSqlite(path);
  }
  await migrate(db);
  return db;
}
