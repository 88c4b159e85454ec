// A PostgreSQL of a test's own: Debian's binaries run as the postgres user (trust, fsync off) in a
// temporary folder on a free loopback port, stopped with `-m immediate` and removed after. Needs root
// and the postgres user; `canRunPostgres` says whether this machine has them.

import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitForPort } from "./ports.ts";

/** The newest installed server's bin folder under /usr/lib/postgresql, if any. */
export const pgBin = (() => {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const v = readdirSync(root).sort().at(-1);
  return v && existsSync(join(root, v, "bin/initdb")) ? join(root, v, "bin") : undefined;
})();
export const canRunPostgres = !!pgBin && process.getuid?.() === 0 && Bun.spawnSync(["id", "postgres"]).exitCode === 0;

/** Runs `cmd` as the postgres user: its exit code and its output (stdout, then stderr). */
export function asPostgres(cmd: string[]): { code: number; out: string } {
  const r = Bun.spawnSync(["runuser", "-u", "postgres", "--", ...cmd], { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString() + r.stderr.toString() };
}

export interface PostgresServer {
  port: number;
  /** the `postgres` database as the postgres user */
  url: string;
  /** `CREATE DATABASE name` through psql: what psql said (code 0 when it was made) and the new database's URL */
  createDatabase(name: string): { code: number; out: string; url: string };
  stop(): void;
}

/** initdb and pg_ctl start in a new folder named by `prefix`; throws what they said if either fails. */
export async function startPostgresServer(prefix: string): Promise<PostgresServer> {
  if (!pgBin) throw new Error("PostgreSQL is not installed under /usr/lib/postgresql");
  const bin = pgBin;
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const stop = () => {
    asPostgres([join(bin, "pg_ctl"), "-D", join(dir, "data"), "-m", "immediate", "stop"]);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    chmodSync(dir, 0o755);
    chownSync(dir, Number(Bun.spawnSync(["id", "-u", "postgres"]).stdout.toString()), Number(Bun.spawnSync(["id", "-g", "postgres"]).stdout.toString()));
    const init = asPostgres([join(bin, "initdb"), "-D", join(dir, "data"), "-A", "trust", "-U", "postgres", "--no-sync"]);
    if (init.code !== 0) throw new Error(init.out);
    const port = await freePort();
    const start = asPostgres([join(bin, "pg_ctl"), "-D", join(dir, "data"), "-l", join(dir, "log"), "-w", "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, "start"]);
    if (start.code !== 0) throw new Error(start.out);
    await waitForPort(port);
    const urlOf = (db: string) => `postgres://postgres@127.0.0.1:${port}/${db}`;
    return {
      port,
      url: urlOf("postgres"),
      createDatabase(name) {
        return { ...asPostgres(["psql", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-c", `CREATE DATABASE ${name}`]), url: urlOf(name) };
      },
      stop,
    };
  } catch (err) {
    stop();
    throw err;
  }
}
