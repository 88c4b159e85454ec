// Starts a real PostgreSQL server on loopback in a directory of its own (initdb on first start), for
// tests and for the one-machine cluster. As root it runs the server as the `postgres` system user.

import { spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SQL } from "bun";
import { dropRootTo, freeLoopbackPort, randomSecret, runSetup, ServerStartError, startManagedProcess, type ManagedProcess } from "./managed-process.ts";

export interface PostgresServerOptions {
  /** Holds `data/`, the socket and the log; created if missing. Reused (no initdb) when it has data. */
  dir: string;
  port?: number;
  /** The superuser's password on first start (generated otherwise; kept in `<dir>/admin-password`). */
  adminPassword?: string;
  /** false skips fsync: for tests only. */
  durable?: boolean;
}

export interface RunningPostgres {
  host: string;
  port: number;
  adminUser: string;
  adminPassword: string;
  /** postgres://admin:password@127.0.0.1:port/postgres: what PostgresProvisioner takes. */
  adminUrl: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

export function postgresBinDir(): string {
  if (process.env.SKIFF_PG_BIN) return process.env.SKIFF_PG_BIN;
  const root = "/usr/lib/postgresql";
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => existsSync(join(root, v, "bin", "postgres"))).sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], "bin");
  }
  return ""; // rely on PATH
}

export async function startPostgres(opts: PostgresServerOptions): Promise<RunningPostgres> {
  const bin = postgresBinDir();
  const exe = (name: string) => (bin ? join(bin, name) : name);
  const owner = dropRootTo("postgres");
  const dataDir = join(opts.dir, "data");
  const passwordFile = join(opts.dir, "admin-password");
  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  if (owner) {
    chownSync(opts.dir, owner.uid, owner.gid);
    if (spawnSync("test", ["-x", opts.dir], { ...owner }).status !== 0) {
      throw new ServerStartError(`the postgres user cannot reach ${opts.dir}: its parent directories need o+x (traverse), or choose a directory elsewhere`);
    }
  }
  let adminPassword = opts.adminPassword ?? randomSecret();
  const fresh = !existsSync(join(dataDir, "PG_VERSION"));
  if (fresh) {
    writeFileSync(passwordFile, adminPassword, { mode: 0o600 });
    if (owner) chownSync(passwordFile, owner.uid, owner.gid);
    runSetup(
      exe("initdb"),
      ["-D", dataDir, "-U", "postgres", `--pwfile=${passwordFile}`, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"],
      { ...owner, what: "initdb" },
    );
  } else {
    adminPassword = (await Bun.file(passwordFile).text()).trim();
  }
  const port = opts.port ?? (await freeLoopbackPort());
  const args = ["-D", dataDir, "-k", opts.dir, "-p", String(port), "-c", "listen_addresses=127.0.0.1"];
  if (opts.durable === false) args.push("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off");
  const logFile = join(opts.dir, "postgres.log");
  writeFileSync(logFile, "", { flag: "a" });
  if (owner) chownSync(logFile, owner.uid, owner.gid);
  const proc = await startManagedProcess({
    command: exe("postgres"),
    args,
    logFile,
    ...owner,
    what: "postgres",
    ready: async () => spawnSync(exe("pg_isready"), ["-q", "-h", "127.0.0.1", "-p", String(port)]).status === 0,
  });
  const adminUrl = `postgres://postgres:${encodeURIComponent(adminPassword)}@127.0.0.1:${port}/postgres`;
  // A fresh cluster lets every role connect to its maintenance databases; tenants need none of them.
  if (fresh) {
    const sql = new SQL({ url: adminUrl, max: 1 });
    try {
      await sql.unsafe("REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC");
      await sql.unsafe("REVOKE CONNECT ON DATABASE template1 FROM PUBLIC");
    } finally {
      await sql.close({ timeout: 1 });
    }
  }
  return { host: "127.0.0.1", port, adminUser: "postgres", adminPassword, adminUrl, process: proc, stop: () => proc.stop() };
}
