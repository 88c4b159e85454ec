// Starts a real PostgreSQL server on loopback in a directory of its own (initdb on first start), for
// tests and for the one-machine cluster. As root it runs the server as the `postgres` system user. Every
// connection, over TCP or the socket, needs a password (issue 24): see requirePasswords.

import { spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SQL } from "bun";
import { assertNoPasswordlessPostgres } from "./credential-check.ts";
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

/**
 * The pg_hba.conf text with every `trust` method (in without a password) replaced by scram-sha-256;
 * other lines, comments and spacing are kept. Older code ran initdb with --auth-local=trust: any process
 * that reached the socket was in as postgres. Why scram rather than peer on the socket: peer would let in
 * any OS user named like a role, and nothing of skiff's uses the socket (it connects over TCP with the
 * admin password).
 */
export function requirePasswords(hba: string): string {
  return hba
    .split("\n")
    .map((line) => {
      const fields = line.replace(/#.*/, "").trim().split(/\s+/);
      // local DATABASE USER METHOD | host* DATABASE USER ADDRESS [IP-MASK] METHOD [OPTIONS]
      const hasMask = /^[0-9.]+$|:/.test(fields[4] ?? "");
      const methodAt = fields[0] === "local" ? 3 : /^host/.test(fields[0] ?? "") ? (hasMask ? 5 : 4) : -1;
      if (methodAt < 0 || fields[methodAt] !== "trust") return line;
      return line.replace(new RegExp(`(^\\s*(?:\\S+\\s+){${methodAt}})trust\\b`), "$1scram-sha-256");
    })
    .join("\n");
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
      ["-D", dataDir, "-U", "postgres", `--pwfile=${passwordFile}`, "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"],
      { ...owner, what: "initdb" },
    );
  } else {
    adminPassword = (await Bun.file(passwordFile).text()).trim();
  }
  // On every start, so data directories made by older code are fixed before the server reads the file.
  const hbaFile = join(dataDir, "pg_hba.conf");
  const hba = readFileSync(hbaFile, "utf8");
  if (requirePasswords(hba) !== hba) writeFileSync(hbaFile, requirePasswords(hba));
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
  await assertNoPasswordlessPostgres({ port, socketDir: opts.dir, hbaFile, stop: () => proc.stop() });
  const adminUrl = `postgres://postgres:${encodeURIComponent(adminPassword)}@127.0.0.1:${port}/postgres`;
  // A fresh cluster lets every role connect to its maintenance databases; tenants need none of them.
  if (fresh) {
    const sql = new SQL({ url: adminUrl, max: 1 });
    try {
      await sql.unsafe("REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC");
      await sql.unsafe("REVOKE CONNECT ON DATABASE template1 FROM PUBLIC");
    } catch (err) {
      await proc.stop();
      throw err;
    } finally {
      await sql.close({ timeout: 1 });
    }
  }
  return { host: "127.0.0.1", port, adminUser: "postgres", adminPassword, adminUrl, process: proc, stop: () => proc.stop() };
}
