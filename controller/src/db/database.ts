// The controller's storage interface: a few async calls that both the embedded SQLite and
// PostgreSQL can serve. SQL is written once with `?` placeholders; each driver rewrites as needed.

export type SqlValue = string | number | bigint | null | Uint8Array;
export type Row = Record<string, unknown>;

export interface Queryable {
  all<T = Row>(sql: string, params?: SqlValue[]): Promise<T[]>;
  get<T = Row>(sql: string, params?: SqlValue[]): Promise<T | undefined>;
  run(sql: string, params?: SqlValue[]): Promise<{ changes: number }>;
}

export interface Database extends Queryable {
  /** Runs fn in one transaction: everything it does commits together or not at all. */
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /** Runs a script of several statements outside the transaction helper (migrations). */
  exec(sql: string): Promise<void>;
  readonly dialect: "sqlite" | "postgres";
  close(): Promise<void>;
}

/** Serialises async critical sections: one SQLite connection runs one transaction at a time. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const prev = this.tail;
    this.tail = prev.then(() => next);
    await prev;
    return release;
  }
}
