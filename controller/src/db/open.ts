// Opens the configured database (SQLite in the data dir, or PostgreSQL from SKIFF_DATABASE_URL)
// and brings its schema up to date.

import { join } from "node:path";
import type { Database } from "./database.ts";
import { migrate } from "./migrations.ts";
import { openSqlite } from "./sqlite.ts";
import { openPostgres } from "./postgres.ts";

export async function openDatabase(opts: { dataDir: string; databaseUrl?: string }): Promise<Database> {
  const url = opts.databaseUrl;
  const db = url && /^postgres(ql)?:\/\//.test(url) ? await openPostgres(url) : openSqlite(url && url !== "" ? url.replace(/^sqlite:\/\//, "") : join(opts.dataDir, "controller.sqlite"));
  await migrate(db);
  return db;
}
