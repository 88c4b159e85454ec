// The embedded database: bun:sqlite in WAL mode. One connection; transactions are serialised
// with a mutex so an await inside one never interleaves another's statements.

import { Database as BunSqlite } from "bun:sqlite";
import { Mutex, type Database, type Queryable, type SqlValue } from "./database.ts";

/** How long a statement waits for another process's lock (a controller and a health manager share the file). */
export const BUSY_TIMEOUT_MS = 5000;

/**
 * Turns on WAL. Switching a fresh file to WAL needs a moment alone with it, and SQLite answers
 * "database is locked" at once (without the busy handler) when another process is opening it too:
 * retry for as long as a statement would wait (issue 7: 5 of 6 simultaneous first starts failed).
 */
function enableWal(db: BunSqlite, now = () => Date.now()): void {
  const until = now() + BUSY_TIMEOUT_MS;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    try {
      db.exec("PRAGMA journal_mode = WAL");
      return;
    } catch (err) {
      if (!/locked|busy/i.test((err as Error).message) || now() > until) throw err;
      Bun.sleepSync(delay);
    }
  }
}

export function openSqlite(path: string): Database {
  const db = new BunSqlite(path, { create: true, strict: true });
  // the busy timeout first: every later statement, the pragmas included, waits rather than fails
  db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  enableWal(db);
  db.exec("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;");
  const mutex = new Mutex();
  let inTx = false;
  const cache = new Map<string, ReturnType<BunSqlite["query"]>>();
  const stmt = (sql: string) => {
    let s = cache.get(sql);
    if (!s) {
      s = db.query(sql);
      if (cache.size > 500) cache.clear();
      cache.set(sql, s);
    }
    return s;
  };
  const direct: Queryable = {
    all: async <T>(sql: string, params: SqlValue[] = []) => stmt(sql).all(...(params as never[])) as T[],
    get: async <T>(sql: string, params: SqlValue[] = []) => (stmt(sql).get(...(params as never[])) ?? undefined) as T | undefined,
    run: async (sql: string, params: SqlValue[] = []) => ({ changes: stmt(sql).run(...(params as never[])).changes }),
  };
  // Outside a transaction, a statement waits for any open transaction so it never reads
  // half-written state from the shared connection.
  const guarded = <A extends unknown[], R>(f: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      if (!inTx) return f(...a);
      const release = await mutex.lock();
      try {
        return await f(...a);
      } finally {
        release();
      }
    };
  return {
    dialect: "sqlite",
    all: guarded(direct.all) as Queryable["all"],
    get: guarded(direct.get) as Queryable["get"],
    run: guarded(direct.run),
    async tx(fn) {
      const release = await mutex.lock();
      inTx = true;
      db.exec("BEGIN IMMEDIATE");
      try {
        const result = await fn(direct);
        db.exec("COMMIT");
        return result;
      } catch (err) {
        db.exec("ROLLBACK");
        throw err;
      } finally {
        inTx = false;
        release();
      }
    },
    async exec(sql) {
      db.exec(sql);
    },
    async close() {
      db.close();
    },
  };
}
