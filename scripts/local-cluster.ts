// Brings up a one-machine skiff cluster as real processes: a nats-server on a generated loopback
// config, the controller (SQLite in the data dir), the health manager, one router and one agent; with
// `services`, also real PostgreSQL/MariaDB/Redis/RabbitMQ servers and the service broker, registered with
// the controller as the broker "skiff" (so `skiff marketplace` offers them).
// Used by `npm start` (scripts/cluster.ts) and by the end-to-end tests, so both run the same thing.

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { startLocalServices, type LocalServiceName, type LocalServices } from "../controller/broker/servers/index.ts";
import { freeLoopbackPort } from "../controller/broker/servers/managed-process.ts";
import { privateDir, restrictUmask, tightenTree, traverseOnlyDir, writePrivateFile } from "../bus/private-state.ts";
import { natsServerConfig, natsUserName, type NatsIdentity, type NatsUserEntry } from "../bus/nats-permissions.ts";
import { stopChildren, stopChild } from "./stop-child.ts";
import { agentRuntimeEnv } from "../agent/runtime-env.ts";
import { stopsToRunBeforeExit } from "./stop-request.ts";

export const repoRoot = resolve(dirname(new URL(import.meta.url).pathname), "..");
const bun = process.execPath; // scripts run under Bun: the same binary runs the Bun components

/** Every path the one-machine cluster uses, in one place (piku-style). */
export function clusterPaths(dataDir: string) {
  return {
    dataDir,
    /** held by the running `npm start` (scripts/cluster-lock.ts) */
    lock: join(dataDir, "cluster.lock"),
    natsDir: join(dataDir, "nats"),
    natsConfig: join(dataDir, "nats", "nats.conf"),
    natsCredentials: join(dataDir, "nats", "credentials.json"),
    /** the router's status password (/metrics, /routes), made by the router on its first start */
    routerStatusPassword: join(dataDir, "router", "status-password"),
    controllerDir: join(dataDir, "controller"),
    agentDir: join(dataDir, "agent"),
    cliHome: join(dataDir, "cli"),
    adminPassword: join(dataDir, "admin-password"),
    servicesDir: join(dataDir, "services"),
    brokerDir: join(dataDir, "broker"),
    brokerPassword: join(dataDir, "broker", "password"),
  };
}

export interface ClusterOptions {
  dataDir: string;
  /** preferred ports; a busy one is replaced by a free one */
  ports?: Partial<Record<"nats" | "controller" | "router" | "routerStatus" | "broker", number>>;
  /** echo each process's output with its name in front */
  echo?: boolean;
  domain?: string;
  extraEnv?: Record<string, string>;
  /**
   * Start real service servers and the broker, and register it as "skiff": `true` for all four
   * (postgres, mysql, redis, rabbitmq; RabbitMQ adds ~7 s to start and stop), or the ones named.
   */
  services?: boolean | readonly LocalServiceName[];
  /** fsync in the service servers (default true; tests pass false) */
  servicesDurable?: boolean;
  /**
   * Aborting it while the cluster starts (Ctrl-C in `npm start`) stops everything started so far, the
   * service servers included, and rejects with ClusterStartAborted. A server caught in the middle of its
   * own start is stopped once that start returns (its starter owns it until then).
   */
  signal?: AbortSignal;
}

export class ClusterStartAborted extends Error {
  override readonly name = "ClusterStartAborted";
  constructor() {
    super("the cluster's start was interrupted; everything it had started is stopped");
  }
}

export const ALL_LOCAL_SERVICES: readonly LocalServiceName[] = ["postgres", "mysql", "redis", "rabbitmq"];

export interface ClusterProcess {
  name: string;
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

export interface Cluster {
  natsUrl: string;
  controllerUrl: string;
  routerPort: number;
  routerStatusPort: number;
  /** basic-auth credentials of the router's /metrics and /routes */
  routerStatus: { user: string; password: string };
  domain: string;
  adminPassword: string;
  paths: ReturnType<typeof clusterPaths>;
  processes: ClusterProcess[];
  /** with `services`: the running servers (admin URLs in `env`) and the broker registered as "skiff" */
  services?: LocalServices;
  broker?: { name: string; url: string; username: string; password: string };
  /** Runs the skiff CLI against this cluster; resolves with its exit code and output. */
  cli(args: string[], opts?: { echo?: boolean }): Promise<{ code: number; output: string }>;
  stop(): Promise<void>;
}

export async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

async function choosePort(preferred?: number): Promise<number> {
  if (preferred && (await portIsFree(preferred))) return preferred;
  return freeLoopbackPort();
}

function readOrCreate(path: string, make: () => string): string {
  if (existsSync(path)) return readFileSync(path, "utf8").trim();
  const v = make();
  writePrivateFile(path, v + "\n");
  return v;
}

function startComponent(name: string, command: string, args: string[], env: Record<string, string>, echo: boolean): ClusterProcess {
  const child = spawn(command, args, {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // own process group: Ctrl-C reaches the launcher, which stops each in order
  });
  let out = "";
  let partial = "";
  const onData = (d: Buffer) => {
    const text = d.toString();
    out += text;
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
    if (!echo) return;
    const lines = (partial + text).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) process.stdout.write(`${name.padEnd(10)} | ${line}\n`);
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return { name, child, output: () => out, exited };
}

async function waitForReady(p: ClusterProcess, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (signal?.aborted) throw new ClusterStartAborted();
    if (/\bready\b/.test(p.output())) return;
    if (p.child.exitCode !== null || p.child.signalCode !== null)
      throw new Error(`${p.name} exited (${p.child.exitCode ?? p.child.signalCode}) before it was ready:\n${p.output().slice(-3000)}`);
    await Bun.sleep(20);
  }
  throw new Error(`${p.name} was not ready within ${timeoutMs} ms:\n${p.output().slice(-3000)}`);
}

/** Stops one component and its process group, waiting until they are gone (SIGKILL after `graceMs`). */
async function stopProcess(p: ClusterProcess, graceMs: number, first: NodeJS.Signals = "SIGTERM"): Promise<void> {
  await stopChild(p.child, { signal: first, graceMs, group: true });
}

export async function startLocalCluster(opts: ClusterOptions): Promise<Cluster> {
  const paths = clusterPaths(resolve(opts.dataDir));
  // Everything below is the platform's (files 0600, folders 0700), except the way through: the agent runs
  // instances, and PostgreSQL runs, as other users who must pass through the data dir to their own dirs.
  restrictUmask();
  traverseOnlyDir(paths.dataDir, "the cluster's data directory (SKIFF_DATA_DIR)");
  for (const d of [paths.natsDir, paths.cliHome]) privateDir(d, "a cluster directory");
  // the files at the top (admin-password); each component tightens its own directory when it starts
  tightenTree(paths.dataDir, ["agent", "controller", "broker", "services", "nats", "cli"]);
  const echo = opts.echo ?? false;
  const domain = opts.domain ?? "skiff.localhost";
  // NATS, the controller and the router take a port the OS assigns (-1 / 0) unless a preferred one is free, and
  // report it back: picking a "free" port and binding it later races with everything else on the host.
  const ports = {
    nats: await preferredOr(opts.ports?.nats, -1),
    controller: await preferredOr(opts.ports?.controller, 0),
    router: await preferredOr(opts.ports?.router, 0),
    routerStatus: await preferredOr(opts.ports?.routerStatus, 0),
    broker: opts.services ? await choosePort(opts.ports?.broker) : 0,
  };

  // NATS with a generated config: loopback only, one user per component with least privilege
  // (bus/nats-permissions.ts), passwords made on first start and kept bcrypt-hashed in nats.conf.
  const creds = await natsCredentials(paths);
  writeFileSync(
    paths.natsConfig,
    natsServerConfig({
      listen: `127.0.0.1:${ports.nats}`, // -1: a port the OS assigns, read back from the ports file
      users: creds.users,
    }),
    { mode: 0o600 },
  );
  const adminPassword = readOrCreate(paths.adminPassword, () => randomBytes(18).toString("base64url"));
  let natsUrl = "";
  let controllerUrl = "";
  const common: Record<string, string> = {
    SKIFF_DOMAIN: domain,
    ...opts.extraEnv,
  };

  const processes: ClusterProcess[] = [];
  // Service servers are started one at a time, so that each one running is known to stop() even when
  // the start is interrupted between two of them.
  const serviceSets: LocalServices[] = [];
  const cliChildren = new Set<ChildProcess>();
  const signal = opts.signal;
  // The router drains (/health 503) before it stops accepting so that a load balancer can take it out
  // first; a one-machine cluster has no load balancer, so by default it stops at once. Its stop grace
  // covers whatever drain it is given.
  const routerDrainSeconds = Number(opts.extraEnv?.SKIFF_ROUTER_DRAIN_SECONDS ?? 0);
  const stop = async () => {
    stopsToRunBeforeExit.delete(stop);
    // CLI runs first (a push in flight), then reverse start order: broker, agent (stops its instances),
    // health manager, controller, router, NATS; then the service servers.
    await stopChildren(cliChildren, { graceMs: 2_000 });
    // The agent gets SIGINT: stop its instances now. SIGTERM would evacuate, waiting for replacements
    // on other agents that a one-machine cluster does not have.
    for (const p of [...processes].reverse()) {
      const graceMs = p.name === "agent" ? 15_000 : p.name === "router" ? routerDrainSeconds * 1000 + 5_000 : 5_000;
      await stopProcess(p, graceMs, p.name === "agent" ? "SIGINT" : "SIGTERM");
    }
    await Promise.allSettled(serviceSets.splice(0).map((s) => s.stop()));
  };
  // a test run asked to stop stops every cluster it has running (npm start stops its one itself)
  stopsToRunBeforeExit.add(stop);
  let broker: Cluster["broker"];
  const launch = async (name: string, command: string, args: string[], env: Record<string, string>, readyMs = 20_000) => {
    if (signal?.aborted) throw new ClusterStartAborted();
    // each component its own NATS user (the broker does not use the bus)
    const own = creds.components[name as LocalNatsComponent];
    const natsUser: Record<string, string> = own ? { SKIFF_NATS_USER: own.identity.user, SKIFF_NATS_PASS: own.pass } : {};
    const p = startComponent(name, command, args, { ...common, ...natsUser, ...env }, echo);
    processes.push(p);
    if (name === "nats") natsUrl = await waitForNatsPortsFile(paths.natsDir, readyMs, p, signal);
    else await waitForReady(p, readyMs, signal);
    return p;
  };

  let services: LocalServices | undefined;
  try {
    await launch("nats", "nats-server", ["-c", paths.natsConfig, "--ports_file_dir", paths.natsDir], {});
    await (await import("../controller/broker/servers/credential-check.ts")).assertNoPasswordlessNats({ url: natsUrl, configFile: paths.natsConfig });
    common.SKIFF_NATS_URL = natsUrl;
    // the router before the controller: the controller's console scrapes its /metrics (issue 18)
    const router = await launch("router", "node", ["router/dist/router.mjs"], {
      SKIFF_ROUTER_PORT: String(ports.router),
      SKIFF_ROUTER_STATUS_PORT: String(ports.routerStatus),
      SKIFF_ROUTER_DRAIN_SECONDS: String(routerDrainSeconds),
      SKIFF_ROUTER_STATUS_PASS_FILE: paths.routerStatusPassword,
    });
    ports.router = readyPort(router, "port");
    ports.routerStatus = readyPort(router, "status_port");
    const controller = await launch("controller", bun, ["controller/main.ts"], {
      SKIFF_CONTROLLER_PORT: String(ports.controller),
      SKIFF_DATA_DIR: paths.controllerDir,
      SKIFF_BOOTSTRAP_ADMIN_PASSWORD: adminPassword,
      SKIFF_ROUTER_STATUS_URLS: `http://127.0.0.1:${ports.routerStatus}`,
      SKIFF_ROUTER_STATUS_PASS_FILE: paths.routerStatusPassword,
    });
    controllerUrl = `http://127.0.0.1:${readyPort(controller, "port")}`;
    common.SKIFF_CONTROLLER_URL = controllerUrl;
    await launch("health", bun, ["controller/health-main.ts"], { SKIFF_DATA_DIR: paths.controllerDir });
    // the agent's Bun with the JIT SKIFF_AGENT_JIT chooses (agent/runtime-env.ts: off by default, 13 MiB less RSS)
    await launch("agent", bun, ["agent/main.ts"], { ...agentRuntimeEnv(), SKIFF_DATA_DIR: paths.agentDir, SKIFF_AGENT_DIR: paths.agentDir, SKIFF_AGENT_ID: creds.components.agent.identity.agentId! });
    if (opts.services) {
      const names = opts.services === true ? ALL_LOCAL_SERVICES : opts.services;
      const env: Record<string, string> = {};
      for (const name of names) {
        if (signal?.aborted) throw new ClusterStartAborted();
        const one = await startLocalServices(paths.servicesDir, [name], { durable: opts.servicesDurable ?? true });
        serviceSets.push(one);
        Object.assign(env, one.env);
      }
      const sets = [...serviceSets];
      // One LocalServices for the caller, as if started together: each set's servers, the joint env and stop.
      services = Object.assign({} as LocalServices, ...sets, { env, stop: async () => void (await Promise.allSettled(sets.map((s) => s.stop()))) });
      broker = {
        name: "skiff", url: `http://127.0.0.1:${ports.broker}`, username: "skiff-broker",
        password: readOrCreate(paths.brokerPassword, () => randomBytes(18).toString("base64url")),
      };
      await launch("broker", bun, ["controller/broker/main.ts"], {
        ...env,
        SKIFF_BROKER_PORT: String(ports.broker),
        SKIFF_BROKER_USER: broker.username,
        SKIFF_BROKER_PASS: broker.password,
        SKIFF_DATA_DIR: paths.brokerDir,
      });
      await registerBroker(controllerUrl, adminPassword, broker);
    }
    if (signal?.aborted) throw new ClusterStartAborted();
  } catch (err) {
    await stop();
    throw signal?.aborted ? new ClusterStartAborted() : err;
  }

  const cli = (args: string[], cliOpts: { echo?: boolean } = {}) =>
    new Promise<{ code: number; output: string }>((resolvePromise) => {
      const child = spawn(bun, ["cli/main.ts", ...args], {
        cwd: repoRoot,
        env: { ...process.env, SKIFF_HOME: paths.cliHome },
        stdio: ["ignore", "pipe", "pipe"],
      });
      cliChildren.add(child);
      let out = "";
      const onData = (d: Buffer) => {
        out += d.toString();
        if (cliOpts.echo) process.stdout.write(d.toString().replace(/^(?=.)/gm, `${"push".padEnd(10)} | `));
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", onData);
      child.on("exit", (code) => {
        cliChildren.delete(child);
        resolvePromise({ code: code ?? 1, output: out });
      });
    });

  return {
    natsUrl,
    controllerUrl,
    routerPort: ports.router,
    routerStatusPort: ports.routerStatus,
    routerStatus: { user: "router-status", password: readFileSync(paths.routerStatusPassword, "utf8").trim() },
    domain,
    adminPassword,
    paths,
    processes,
    services,
    broker,
    cli,
    stop,
  };
}

type LocalNatsComponent = "controller" | "health" | "router" | "agent";
interface NatsCredential {
  identity: NatsIdentity;
  pass: string;
  /** bcrypt of pass: what nats.conf holds */
  hash: string;
}
interface NatsCredentialsFile {
  /** the operator's user (tests, debugging): every subject; no component is given it */
  user: string;
  pass: string;
  hash?: string;
  components: Record<LocalNatsComponent, NatsCredential>;
}

/**
 * The one-machine cluster's NATS users, made once and kept 0600 in nats/credentials.json: the operator
 * (`user`/`pass`, as before issue 27) and one per component. The agent's NATS user is tied to its id,
 * so the id is fixed here (an id the agent saved in its data dir before is kept).
 */
async function natsCredentials(paths: ReturnType<typeof clusterPaths>): Promise<NatsCredentialsFile & { users: NatsUserEntry[] }> {
  const old = existsSync(paths.natsCredentials) ? (JSON.parse(readFileSync(paths.natsCredentials, "utf8")) as Partial<NatsCredentialsFile>) : {};
  const savedAgentId = join(paths.agentDir, "agent-id");
  const agentId = old.components?.agent?.identity.agentId
    ?? (existsSync(savedAgentId) ? readFileSync(savedAgentId, "utf8").trim() : `agent-${randomBytes(6).toString("hex")}`);
  const hash = (pass: string) => Bun.password.hash(pass, { algorithm: "bcrypt", cost: 10 });
  const wanted: Record<LocalNatsComponent, NatsIdentity> = {
    controller: { role: "controller", user: natsUserName("controller", "local") },
    health: { role: "health", user: natsUserName("health", "local") },
    router: { role: "router", user: natsUserName("router", "local") },
    agent: { role: "agent", user: natsUserName("agent", agentId), agentId },
  };
  const components = {} as Record<LocalNatsComponent, NatsCredential>;
  for (const [name, identity] of Object.entries(wanted) as [LocalNatsComponent, NatsIdentity][]) {
    const had = old.components?.[name];
    const pass = randomBytes(18).toString("base64url");
    components[name] = had && JSON.stringify(had.identity) === JSON.stringify(identity) ? had : { identity, pass, hash: await hash(pass) };
  }
  // the operator keeps the user and password an older version made for every component
  const pass = old.pass ?? randomBytes(18).toString("base64url");
  // users are named <role>.<name> since their inboxes lie under _INBOX.<role> (an older "skiff" is renamed)
  const user = natsUserName("operator", "skiff");
  const file: NatsCredentialsFile = { user, pass, hash: old.hash && old.pass ? old.hash : await hash(pass), components };
  const text = JSON.stringify(file, null, 2) + "\n";
  if (!existsSync(paths.natsCredentials) || readFileSync(paths.natsCredentials, "utf8") !== text) writePrivateFile(paths.natsCredentials, text);
  const users: NatsUserEntry[] = [
    { identity: { role: "operator", user: file.user }, password: file.hash! },
    ...Object.values(components).map((c) => ({ identity: c.identity, password: c.hash })),
  ];
  return { ...file, users };
}

/** Registers the broker with the controller as admin, or points the existing registration at it (its port may differ per start). */
async function registerBroker(controllerUrl: string, adminPassword: string, broker: NonNullable<Cluster["broker"]>): Promise<void> {
  const call = async (method: string, path: string, body: unknown, token?: string) => {
    const res = await fetch(controllerUrl + path, {
      method, body: body === undefined ? undefined : JSON.stringify(body),
      headers: { "content-type": "application/json", ...(token ? { authorization: `bearer ${token}` } : {}) },
    });
    const json = (await res.json().catch(() => ({}))) as any;
    if (!res.ok) throw new Error(`registering the service broker: ${method} ${path} answered ${res.status}: ${JSON.stringify(json).slice(0, 500)}`);
    return json;
  };
  const token = (await call("POST", "/v3/tokens", { username: "admin", password: adminPassword })).access_token as string;
  const authentication = { type: "basic", credentials: { username: broker.username, password: broker.password } };
  const existing = (await call("GET", `/v3/service_brokers?names=${broker.name}`, undefined, token)).resources[0];
  if (existing) await call("PATCH", `/v3/service_brokers/${existing.guid}`, { url: broker.url, authentication }, token);
  else await call("POST", "/v3/service_brokers", { name: broker.name, url: broker.url, authentication }, token);
}

/** nats-server writes its actual client URL to `<dir>/nats-server_<pid>.ports` once it listens. */
async function waitForNatsPortsFile(dir: string, timeoutMs: number, p: ClusterProcess, signal?: AbortSignal): Promise<string> {
  const file = join(dir, `nats-server_${p.child.pid}.ports`);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (signal?.aborted) throw new ClusterStartAborted();
    if (existsSync(file)) {
      const url = (JSON.parse(readFileSync(file, "utf8")) as { nats: string[] }).nats[0];
      if (url) return url;
    }
    if (p.child.exitCode !== null) throw new Error(`${p.name} exited before listening:\n${p.output()}`);
    await Bun.sleep(20);
  }
  throw new Error(`${p.name} wrote no ports file within ${timeoutMs} ms:\n${p.output()}`);
}

/** The port a component reported in its `ready` line, e.g. `ready port=9022`. */
function readyPort(p: ClusterProcess, field: string): number {
  const line = p.output().split("\n").find((l) => /\bready\b/.test(l)) ?? "";
  const m = new RegExp(`\\b${field}=(\\d+)`).exec(line);
  if (!m) throw new Error(`${p.name} did not report ${field} in its ready line: ${line}`);
  return Number(m[1]);
}

async function preferredOr(preferred: number | undefined, osAssigned: number): Promise<number> {
  return preferred && (await portIsFree(preferred)) ? preferred : osAssigned;
}
