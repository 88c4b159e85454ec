// Starts a real redis-server on loopback (no persistence unless asked) whose `default` user is the
// admin, protected by a password: the RedisProvisioner creates ACL users beside it. A server where any
// enabled user logs in without a password is stopped and refused (issue 24).

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RedisClient } from "bun";
import { aclUsersWithoutPassword, assertNoPasswordlessRedis, PasswordlessLoginError } from "./credential-check.ts";
import { freeLoopbackPort, randomSecret, startManagedProcess, type ManagedProcess } from "./managed-process.ts";

export interface RedisServerOptions {
  dir: string;
  port?: number;
  adminPassword?: string;
  /** Keep an append-only file of the data in `dir` (off for tests). ACL users are always kept. */
  durable?: boolean;
}

export interface RunningRedis {
  host: string;
  port: number;
  adminPassword: string;
  /** redis://default:password@127.0.0.1:port: what RedisProvisioner takes. */
  adminUrl: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

export async function startRedis(opts: RedisServerOptions): Promise<RunningRedis> {
  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  const port = opts.port ?? (await freeLoopbackPort());
  const aclPath = join(opts.dir, "users.acl");
  // ACL SAVE stores only hashes, so the admin password of a restart comes from its own file.
  const passwordFile = join(opts.dir, "admin-password");
  const saved = existsSync(aclPath) && existsSync(passwordFile) ? readFileSync(passwordFile, "utf8").trim() : undefined;
  const adminPassword = saved ?? opts.adminPassword ?? randomSecret();
  if (!saved) writeFileSync(passwordFile, adminPassword, { mode: 0o600 });
  // Secrets go in files, never in argv, where `ps` would show them.
  const conf = join(opts.dir, "redis.conf");
  writeFileSync(
    conf,
    [
      `port ${port}`,
      "bind 127.0.0.1",
      `dir ${opts.dir}`,
      'save ""',
      `appendonly ${opts.durable ? "yes" : "no"}`,
      `aclfile ${aclPath}`,
      "protected-mode yes",
    ].join("\n") + "\n",
    { mode: 0o600 },
  );
  // Users live in an ACL file (the provisioner runs ACL SAVE), so bindings survive a restart. A new admin
  // password (its file lost) replaces only the `default` line: the tenants' users are kept.
  if (!saved) {
    const tenants = existsSync(aclPath) ? readFileSync(aclPath, "utf8").split("\n").filter((l) => l.trim() && !/^user default /.test(l)) : [];
    writeFileSync(aclPath, [`user default on >${adminPassword} ~* &* +@all`, ...tenants].join("\n") + "\n", { mode: 0o600 });
  }
  const proc = await startManagedProcess({
    command: process.env.SKIFF_REDIS_SERVER ?? "redis-server",
    args: [conf],
    logFile: join(opts.dir, "redis.log"),
    what: "redis-server",
    ready: () => redisPing(port, adminPassword),
  });
  const adminUrl = `redis://default:${encodeURIComponent(adminPassword)}@127.0.0.1:${port}`;
  const stop = () => proc.stop();
  await assertNoPasswordlessRedis({ port, aclFile: aclPath, stop });
  await refuseUsersWithoutPassword(adminUrl, aclPath, stop);
  return { host: "127.0.0.1", port, adminPassword, adminUrl, process: proc, stop: () => proc.stop() };
}

/**
 * The probes try `default`; any other user the ACL file enables without a password (nopass, or an empty
 * one) is in as well. Refused rather than fixed: such a user was written by hand, never by skiff.
 */
async function refuseUsersWithoutPassword(adminUrl: string, aclFile: string, stop: () => Promise<void>) {
  const admin = new RedisClient(adminUrl, { autoReconnect: false, connectionTimeout: 5000 });
  let open: string[];
  try {
    open = aclUsersWithoutPassword((await admin.send("ACL", ["LIST"])) as string[]);
  } catch (err) {
    await stop();
    throw err;
  } finally {
    admin.close();
  }
  if (open.length === 0) return;
  await stop();
  throw new PasswordlessLoginError(
    `the Redis server's ACL lets ${open.map((u) => `'${u}'`).join(", ")} in without a password. skiff refuses to use it. It has been stopped. In ${aclFile}, give each a password (>PASSWORD) instead of nopass, or delete the line.`,
  );
}

/** AUTH + PING over a raw socket: readiness without a client library. */
function redisPing(port: number, password: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = require("node:net").connect(port, "127.0.0.1");
    let buf = "";
    const done = (ok: boolean) => (s.destroy(), resolve(ok));
    s.setTimeout(1000, () => done(false));
    s.once("error", () => done(false));
    s.once("connect", () => s.write(`AUTH ${JSON.stringify(password)}\r\nPING\r\n`));
    s.on("data", (d: Buffer) => {
      buf += d.toString();
      if (buf.includes("+PONG")) done(true);
      else if (buf.includes("-")) done(false);
    });
  });
}
