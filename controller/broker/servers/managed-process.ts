// Runs one server process in its own process group, with its output in a log file, and stops exactly
// that group: SIGTERM, then SIGKILL after a grace period. Shared by the real-server starters.

import { spawn, spawnSync } from "node:child_process";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export interface ManagedProcessOptions {
  command: string;
  args: string[];
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** stdout and stderr go here. */
  logFile: string;
  /** Run as this uid/gid (PostgreSQL refuses to run as root). */
  uid?: number;
  gid?: number;
  /** Resolves true once the server accepts work; polled until `timeoutMs`. */
  ready: () => Promise<boolean>;
  timeoutMs?: number;
  /** What the process is, for error messages. */
  what: string;
}

export interface ManagedProcess {
  readonly pid: number;
  /** Stops the process group; resolves when the leader exited. Safe to call twice. */
  stop(graceMs?: number): Promise<void>;
}

export class ServerStartError extends Error {
  override readonly name = "ServerStartError";
}

export async function startManagedProcess(opts: ManagedProcessOptions): Promise<ManagedProcess> {
  const out = openSync(opts.logFile, "a");
  const child = spawn(opts.command, opts.args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env } as NodeJS.ProcessEnv,
    stdio: ["ignore", out, out],
    detached: true,
    uid: opts.uid,
    gid: opts.gid,
  });
  closeSync(out);
  let exited = false;
  let exitCode: number | null = null;
  const exit = new Promise<void>((resolve) => {
    child.once("exit", (code) => {
      exited = true;
      exitCode = code;
      resolve();
    });
    child.once("error", () => {
      exited = true;
      resolve();
    });
  });
  const pid = child.pid;
  const stop = async (graceMs = 10_000) => {
    if (pid === undefined) return;
    if (!exited) {
      signalGroup(pid, "SIGTERM");
      const timer = setTimeout(() => signalGroup(pid, "SIGKILL"), graceMs);
      await exit;
      clearTimeout(timer);
    }
    // Helpers the server forked into its group (e.g. Erlang's inet_gethost) go with it, and the stop
    // ends only once they are gone too: a caller that exits next leaves nothing behind, not even a zombie.
    if (signalGroup(pid, "SIGKILL")) await groupGone(pid, 5_000);
  };

  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    if (exited) break;
    if (await opts.ready().catch(() => false)) return { pid: pid!, stop };
    await Bun.sleep(50);
  }
  await stop(2000);
  const tail = readTail(opts.logFile);
  throw new ServerStartError(
    exited ? `${opts.what} exited with code ${exitCode} while starting; its log ends:\n${tail}` : `${opts.what} did not become ready in time; its log ends:\n${tail}`,
  );
}

/** false when the group is already gone */
function signalGroup(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // members running as another user
  }
}

/** Waits until process group `pgid` is empty (its orphans reaped), at most `timeoutMs`. */
async function groupGone(pgid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (signalGroup(pgid, 0) && Date.now() < deadline) await Bun.sleep(20);
}

export function readTail(path: string, lines = 20): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Runs a setup command to completion (initdb, mariadb-install-db); throws with its output on failure. */
export function runSetup(command: string, args: string[], opts: { uid?: number; gid?: number; env?: Record<string, string>; cwd?: string; what: string }) {
  const r = spawnSync(command, args, { uid: opts.uid, gid: opts.gid, env: { ...process.env, ...opts.env }, cwd: opts.cwd, encoding: "utf8", timeout: 120_000 });
  if (r.status !== 0) throw new ServerStartError(`${opts.what} failed (${r.error?.message ?? `exit ${r.status}`}):\n${(r.stdout ?? "") + (r.stderr ?? "")}`.trimEnd());
}

/** uid/gid of a system user, or undefined when we are not root (then we run servers as ourselves). */
export function dropRootTo(user: string): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = spawnSync("id", ["-u", user], { encoding: "utf8" });
  const gid = spawnSync("id", ["-g", user], { encoding: "utf8" });
  if (uid.status !== 0 || gid.status !== 0) throw new ServerStartError(`running as root, and there is no '${user}' user to run the server as`);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Resolves true when something accepts a TCP connection on host:port. */
export function tcpOpen(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const s = require("node:net").connect(port, host);
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });
}

export async function freeLoopbackPort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export function randomSecret(bytes = 18): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString("base64url");
}

/**
 * The secret kept in `path`, made (mode 0600, directory 0700) on first use and read back afterwards, so a
 * generated password survives restarts without ever being printed.
 */
export function readOrCreateSecret(path: string): string {
  if (existsSync(path)) {
    const saved = readFileSync(path, "utf8").trim();
    if (saved) return saved;
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const secret = randomSecret();
  writeFileSync(path, secret + "\n", { mode: 0o600 });
  chmodSync(path, 0o600);
  return secret;
}
