// Starts a real RabbitMQ node on loopback (Debian's rabbitmq-server 3.10 runs here) with the management
// plugin, whose HTTP API the RabbitmqProvisioner uses. The node gets its own epmd on its own port, its
// own HOME (Erlang cookie) and mnesia dir, so it never meets another node on the machine. No `guest`
// (issue 24): it answers on loopback, where app instances live.

import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertNoPasswordlessRabbitmq } from "./credential-check.ts";
import { freeLoopbackPort, startManagedProcess, type ManagedProcess, readOrCreateSecret } from "./managed-process.ts";

export interface RabbitmqServerOptions {
  dir: string;
  port?: number;
  managementPort?: number;
  adminPassword?: string;
  /** false (tests): stop() kills the node at once instead of waiting ~6 s for a clean shutdown. */
  durable?: boolean;
}

export interface RunningRabbitmq {
  host: string;
  port: number;
  managementPort: number;
  adminUser: string;
  adminPassword: string;
  /** http://admin:password@127.0.0.1:mport: the management API, what RabbitmqProvisioner takes. */
  managementUrl: string;
  stop(): Promise<void>;
}

/** Debian's /usr/sbin/rabbitmq-server switches to the rabbitmq user; the real script runs as us. */
export function rabbitmqServerScript(): string | undefined {
  for (const p of [process.env.SKIFF_RABBITMQ_SERVER, "/usr/lib/rabbitmq/bin/rabbitmq-server"]) if (p && existsSync(p)) return p;
  return undefined;
}

export async function startRabbitmq(opts: RabbitmqServerOptions): Promise<RunningRabbitmq> {
  const script = rabbitmqServerScript();
  if (!script) throw new Error("rabbitmq-server is not installed (apt-get install rabbitmq-server)");
  mkdirSync(join(opts.dir, "home"), { recursive: true, mode: 0o700 });
  const port = opts.port ?? (await freeLoopbackPort());
  const managementPort = opts.managementPort ?? (await freeLoopbackPort());
  const epmdPort = await freeLoopbackPort();
  const distPort = await freeLoopbackPort();
  const adminUser = "skiff_admin";
  // Kept in the dir: the node's database holds the admin user it was first started with, and a new
  // password on the next start would lock the platform out of its own node.
  const adminPassword = opts.adminPassword ?? readOrCreateSecret(join(opts.dir, "admin-password"));
  const conf = join(opts.dir, "rabbitmq.conf");
  writeFileSync(
    conf,
    [
      `listeners.tcp.default = 127.0.0.1:${port}`,
      `management.tcp.port = ${managementPort}`,
      "management.tcp.ip = 127.0.0.1",
      `default_user = ${adminUser}`,
      `default_pass = ${adminPassword}`,
      "default_user_tags.administrator = true",
      "default_permissions.configure = .*",
      "default_permissions.read = .*",
      "default_permissions.write = .*",
    ].join("\n") + "\n",
    { mode: 0o600 },
  );
  writeFileSync(join(opts.dir, "enabled_plugins"), "[rabbitmq_management].\n");
  const logFile = join(opts.dir, "rabbitmq.log");
  const epmd = await startManagedProcess({
    command: "epmd",
    args: ["-port", String(epmdPort)],
    logFile,
    what: "epmd",
    ready: async () => true,
  });
  const env = {
    HOME: join(opts.dir, "home"),
    ERL_EPMD_PORT: String(epmdPort),
    // One name per directory, not per port: the database (mnesia/<node name>) is found again on the next
    // start whatever ports it gets. Nodes of other directories do not meet: each has its own epmd port.
    RABBITMQ_NODENAME: "skiff@localhost",
    RABBITMQ_NODE_IP_ADDRESS: "127.0.0.1",
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: join(opts.dir, "mnesia"),
    RABBITMQ_LOG_BASE: join(opts.dir, "log"),
    RABBITMQ_CONFIG_FILE: conf,
    RABBITMQ_ENABLED_PLUGINS_FILE: join(opts.dir, "enabled_plugins"),
    RABBITMQ_PID_FILE: join(opts.dir, "rabbitmq.pid"),
    RABBITMQ_LOGS: "-",
  };
  const managementUrl = `http://${adminUser}:${encodeURIComponent(adminPassword)}@127.0.0.1:${managementPort}`;
  const auth = `Basic ${btoa(`${adminUser}:${adminPassword}`)}`;
  let node: ManagedProcess;
  try {
    node = await startManagedProcess({
      command: script,
      args: [],
      env,
      logFile,
      what: "rabbitmq-server",
      timeoutMs: 60_000,
      ready: async () => {
        const res = await fetch(`http://127.0.0.1:${managementPort}/api/overview`, { headers: { authorization: auth } });
        return res.ok;
      },
    });
  } catch (err) {
    await epmd.stop();
    throw err;
  }
  const stop = async () => {
    // A throwaway node has nothing worth a clean shutdown (which takes ~6 s on 2 cores).
    await node.stop(opts.durable === false ? 0 : 15_000);
    await epmd.stop();
  };
  try {
    await deleteGuest(managementPort, auth);
    await assertNoPasswordlessRabbitmq({ port, managementPort, stop });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    host: "127.0.0.1",
    port,
    managementPort,
    adminUser,
    adminPassword,
    managementUrl,
    stop,
  };
}

/**
 * With default_user set, a new node (3.10) makes that user and no guest; a node whose database was made
 * without it has guest/guest, which the default loopback_users lets in from 127.0.0.1, exactly where app
 * instances connect from. So guest goes on every start.
 */
export async function deleteGuest(managementPort: number, adminAuth: string): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${managementPort}/api/users/guest`, { method: "DELETE", headers: { authorization: adminAuth }, signal: AbortSignal.timeout(30_000) });
  if (!res.ok && res.status !== 404) throw new Error(`could not delete RabbitMQ's guest user: ${res.status} ${(await res.text()).slice(0, 200)}`);
}
