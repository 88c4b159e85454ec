// PostgreSQL through Bun's built-in client (`Bun.SQL`). The same portable SQL as SQLite: `?`
// placeholders become `$n`; transactions use a reserved connection via sql.begin.

import { SQL } from "bun";
import type { Database, Queryable, SqlValue } from "./database.ts";

function numbered(sql: string): string {
  let n = 0;
  // placeholders never appear inside our string literals, so a plain scan is enough
  return sql.replace(/\?/g, () => `$${++n}`);
}

type Runner = { unsafe(sql: string, params?: unknown[]): Promise<unknown[] & { count?: number }> };

function queryable(run: Runner): Queryable {
  return {
    async all<T>(sql: string, params: SqlValue[] = []) {
      return [...(await run.unsafe(numbered(sql), params))] as T[];
    },
    async get<T>(sql: string, params: SqlValue[] = []) {
      const rows = await run.unsafe(numbered(sql), params);
      return rows[0] as T | undefined;
    },
    async run(sql: string, params: SqlValue[] = []) {
      const r = await run.unsafe(numbered(sql), params);
      return { changes: Number(r.count ?? 0) };
    },
  };
}

export async function openPostgres(url: string): Promise<Database> {
  const sql = new SQL(url);
  await sql.unsafe("SELECT 1");
  const q = queryable(sql as unknown as Runner);
  return {
    dialect: "postgres",
    ...q,
    tx: <T>(fn: (q: Queryable) => Promise<T>) =>
      sql.begin((tx) => fn(queryable(tx as unknown as Runner))) as Promise<T>,
    async exec(script) {
      await sql.unsafe(script);
    },
    async close() {
      await sql.close();
    },
  };
}
