// A real multi-host skiff cluster on one machine (issues 10 and 27), on the hosts of topology.ts:
// PostgreSQL, a 3-node nats-server cluster, the controller (with the registrar), two health managers,
// three agents in two zones, two routers and HAProxy in front of them. Every skiff host comes up only
// the way an operator brings one up: `skiff-node init` on the controller host, `skiff-node join` on
// each, its components run from the unit files join wrote by the host's `skiff-node supervise`
// (node-host.ts; no systemd in these namespaces), TLS on every link between hosts. PostgreSQL and
// HAProxy are not skiff's: started directly, as an operator installs them (PostgreSQL with a
// certificate from the cluster CA, clients verify-full).

import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";
import { ApiClient } from "../../cli/src/client.ts";
import type { NatsConfig } from "../../bus/nats-transport.ts";
import { parseEnvFile } from "../../ops/units.ts";
import { parseAccessLog, type AccessLine } from "./inherent.ts";
import { NodeHost, repoRoot, type UnitProcess } from "./node-host.ts";
import { Topology, type Host, type HostProcess } from "./topology.ts";

export { repoRoot };
const bun = process.execPath;

/** Fixed ports: every host has its own namespace, so they never clash with anything. */
export const Ports = { pg: 5432, nats: 4222, natsCluster: 6222, controller: 9022, router: 8080, routerStatus: 8081, natsMonitor: 8222, lb: 80, lbStats: 8404 } as const;

/** Host numbers inside the run's 198.18.<net>.0/24. */
const Layout = {
  db: 2,
  nats1: 11, nats2: 12, nats3: 13,
  controller: 20,
  hm1: 21, hm2: 22,
  agent1: 31, agent2: 32, agent3: 33,
  router1: 41, router2: 42,
  lb: 50,
} as const;
type HostName = keyof typeof Layout;

/** The hosts skiff-node runs, and the role each joins as (the controller host also runs the registrar). */
const Roles = {
  controller: "controller",
  nats1: "nats", nats2: "nats", nats3: "nats",
  hm1: "health", hm2: "health",
  agent1: "agent", agent2: "agent", agent3: "agent",
  router1: "router", router2: "router",
} as const;
type SkiffHost = keyof typeof Roles;
const natsHosts = ["nats1", "nats2", "nats3"] as const;
type NatsHost = (typeof natsHosts)[number];
/** The component (unit) whose process a host's entry in `procs` is. */
const mainComponent = { nats: "nats", controller: "controller", health: "health", agent: "agent", router: "router" } as const;

export const agentZones: Record<string, string> = { agent1: "zone-a", agent2: "zone-a", agent3: "zone-b" };

export interface ClusterTimings {
  /** router prune threshold and interval, agent re-register interval: shortened so a test sees a prune */
  staleThresholdS: number;
  pruneIntervalS: number;
  registerMs: number;
  drainS: number;
}

export const defaultTimings: ClusterTimings = { staleThresholdS: 20, pruneIntervalS: 5, registerMs: 5000, drainS: 2 };

/** A process the scenarios may signal and wait for: a unit's (node-host.ts) or one started directly. */
export type ClusterProcess = Pick<HostProcess | UnitProcess, "name" | "pid" | "exited" | "alive">;

/** The API client with the cluster CA, for tests that call the API directly (the CLI takes SKIFF_TLS_CA). */
class ClusterApiClient extends ApiClient {
  constructor(api: string, token: string, private readonly ca: string) {
    super(api, token);
  }
  override async raw(method: string, path: string, init: { body?: BodyInit; headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<Response> {
    return fetch(this.api + path, { method, body: init.body, headers: this.headers(init.headers), signal: init.signal, tls: { ca: this.ca } } as RequestInit);
  }
}

export class SkiffCluster {
  readonly dir: string;
  readonly domain = "skiff.test";
  readonly pgPassword = randomBytes(12).toString("base64url");
  readonly statusUser = "router-status";
  readonly statusPass = randomBytes(12).toString("base64url");
  readonly procs = new Map<string, ClusterProcess>();
  readonly nodes = new Map<SkiffHost, NodeHost>();
  readonly timings: ClusterTimings;
  topology!: Topology;

  constructor(opts: { timings?: Partial<ClusterTimings> } = {}) {
    this.dir = mkdtempSync(join(tmpdir(), "skiff-cluster-"));
    chmodSync(this.dir, 0o711); // postgres and the instances' unprivileged user pass through it
    this.timings = { ...defaultTimings, ...opts.timings };
  }

  ip(host: HostName): string {
    return this.topology.address(Layout[host]);
  }
  get natsUrl(): string {
    return natsHosts.map((h) => `nats://${this.ip(h)}:${Ports.nats}`).join(",");
  }
  get controllerUrl(): string {
    return `https://${this.ip("controller")}:${Ports.controller}`;
  }
  get lbUrl(): string {
    return `http://${this.ip("lb")}:${Ports.lb}`;
  }
  /** Every skiff host is told this one at init (the registrar hands it to the controller and health managers). */
  get databaseUrl(): string {
    return `postgres://postgres:${this.pgPassword}@${this.ip("db")}:${Ports.pg}/postgres?sslmode=verify-full`;
  }
  /** The cluster CA (the same file on every host; this one is the registrar host's). */
  get caFile(): string {
    return this.node("controller").etc("ca.pem");
  }
  /** The admin password the controller was given by the registrar. */
  get adminPassword(): string {
    return parseEnvFile(readFileSync(this.node("controller").etc("controller.env"), "utf8")).SKIFF_BOOTSTRAP_ADMIN_PASSWORD!;
  }
  routerStatusUrl(router: "router1" | "router2"): string {
    return `http://${this.ip(router)}:${Ports.routerStatus}`;
  }
  host(name: HostName): Host {
    return this.topology.host(name);
  }
  node(name: SkiffHost): NodeHost {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no skiff host ${name}`);
    return n;
  }
  proc(name: string): ClusterProcess {
    const p = this.procs.get(name);
    if (!p) throw new Error(`no process ${name}`);
    return p;
  }

  /** An agent's name is its id (its NATS user may read only dea.<id>.*): the run's id keeps it unique. */
  private nodeName(h: SkiffHost): string {
    return Roles[h] === "agent" ? `${h}-${this.topology.id}` : h;
  }

  async start(): Promise<void> {
    this.topology = Topology.create({ logFile: this.logPath });
    for (const [name, n] of Object.entries(Layout)) this.topology.addHost(name, n);
    const hostsDir = join(this.dir, "hosts");
    mkdirSync(hostsDir);
    chmodSync(hostsDir, 0o711);
    for (const h of Object.keys(Roles) as SkiffHost[]) this.nodes.set(h, new NodeHost(this.host(h), join(hostsDir, h)));
    // every skiff host "boots": its service manager runs, with nothing enabled yet
    await Promise.all([...this.nodes.values()].map((n) => n.boot()));
    const ctl = this.node("controller");
    const init = await ctl.must(["init", "--name", `sk${this.topology.id}`, "--address", this.ip("controller"), "--domain", this.domain,
      "--database-url", this.databaseUrl, "--token-uses", String(Object.keys(Roles).length), "--token-ttl", "10m"]);
    const token = /--cluster (\S+)/.exec(init)?.[1];
    if (!token) throw new Error(`skiff-node init printed no join token:\n${init}`);
    await Promise.all([
      this.startPostgres(),
      (async () => {
        // one NATS host after the other: each join waits until the NATS hosts already in have its route
        for (const h of natsHosts) await this.join(h, token);
        await this.waitNatsCluster();
      })(),
    ]);
    await this.join("controller", token);
    await Promise.all([
      this.join("hm1", token),
      this.join("hm2", token),
      ...(["router1", "router2"] as const).map((h) => this.join(h, token, {
        SKIFF_ROUTER_STATUS_USER: this.statusUser,
        SKIFF_ROUTER_STATUS_PASS: this.statusPass,
        SKIFF_ROUTER_DRAIN_SECONDS: String(this.timings.drainS),
        SKIFF_ROUTER_STALE_THRESHOLD_SECONDS: String(this.timings.staleThresholdS),
        SKIFF_ROUTER_PRUNE_INTERVAL_SECONDS: String(this.timings.pruneIntervalS),
        SKIFF_ROUTER_REGISTER_INTERVAL_SECONDS: String(Math.round(this.timings.registerMs / 1000)),
        SKIFF_ROUTER_CONNECT_TIMEOUT_MS: "1000",
        SKIFF_ROUTER_RESPONSE_TIMEOUT_MS: "10000",
        // which endpoint each failed request went to: what tells an inherent failure from a lost retry
        SKIFF_ROUTER_ACCESS_LOG: this.accessLogPath(h),
      })),
      ...(["agent1", "agent2", "agent3"] as const).map((h) => this.join(h, token, {
        SKIFF_AGENT_ZONE: agentZones[h]!,
        SKIFF_AGENT_REGISTER_MS: String(this.timings.registerMs),
        SKIFF_AGENT_MEMORY_MB: "2048",
      })),
      // the test's own NATS user (it listens to registrations and asks agents for their instances)
      ctl.must(["credentials", "create", "--role", "operator", "--name", "scenarios", "--out", this.operatorDir]),
      this.startLoadBalancer(),
    ]);
    await this.assertTls();
  }

  /**
   * The scenarios run on TLS links or not at all: every NATS node requires TLS of its clients (its INFO
   * says so), and its route port speaks TLS at once (a route's handshake comes before any INFO) with a
   * certificate from the cluster CA for its address.
   */
  private async assertTls(): Promise<void> {
    const bus = this.busConfig("tls-check").tls!;
    for (const h of natsHosts) {
      const info = await firstLine(this.ip(h), Ports.nats);
      if (!/"tls_required":true/.test(info)) throw new Error(`${h}:${Ports.nats} does not require TLS: ${info}`);
      const route = await tlsHandshake(this.ip(h), Ports.natsCluster, { ca: readFileSync(bus.caFile, "utf8"), cert: readFileSync(bus.certFile!, "utf8"), key: readFileSync(bus.keyFile!, "utf8") });
      if (route !== "ok") throw new Error(`${h}:${Ports.natsCluster} (cluster routes) did not complete a TLS handshake with the cluster CA: ${route}`);
    }
  }

  /** `skiff-node join` on a host, with `--set` for each variable; its main component's process. */
  private async join(h: SkiffHost, token: string, set: Record<string, string> = {}): Promise<UnitProcess> {
    const n = this.node(h);
    const args = ["join", "--role", Roles[h], "--cluster", token, "--name", this.nodeName(h), "--address", this.ip(h)];
    for (const [k, v] of Object.entries(set)) args.push("--set", `${k}=${v}`);
    await n.must(args);
    const p = await n.ready(mainComponent[Roles[h]]);
    this.procs.set(h, p);
    return p;
  }

  /**
   * A host's component up again: if the host was lost (its supervisor killed with it), the host boots
   * and its service manager starts what is enabled; otherwise `systemctl start` (a unit that restarts
   * on failure may be on its way back already).
   */
  private async startUnit(h: SkiffHost): Promise<UnitProcess> {
    const n = this.node(h);
    if (!n.supervisor?.alive()) await n.boot();
    // the process this replaces (killed, or exited) is never the answer, even while it is still dying
    const p = await n.start(mainComponent[Roles[h]], undefined, this.procs.get(h)?.pid);
    this.procs.set(h, p);
    return p;
  }

  /** Every process of a host, its service manager too: the host is lost, and nothing on it restarts. */
  killHost(h: SkiffHost): number {
    return this.node(h).killAll();
  }

  /** Every process's output, prefixed with its name; copied out of the run dir on stop. */
  get logPath(): string {
    return join(this.dir, "cluster.log");
  }

  /** A line in the cluster log, so a reader can line up the components' output with the faults. */
  mark(text: string): void {
    appendFileSync(this.logPath, `----------- ${new Date().toISOString()} ${text}\n`);
  }

  async stop(): Promise<void> {
    await this.topology?.teardown();
    // keep the last run's log for whoever reads a failure (SKIFF_CLUSTER_LOG chooses where)
    const keep = process.env.SKIFF_CLUSTER_LOG ?? join(tmpdir(), "skiff-cluster-last.log");
    if (existsSync(this.logPath)) copyFileSync(this.logPath, keep);
    rmSync(this.dir, { recursive: true, force: true });
  }

  // --- components -------------------------------------------------------------------------------

  private async startPostgres(): Promise<void> {
    const pgDir = join(this.dir, "pg");
    mkdirSync(pgDir, { mode: 0o700 });
    const uid = Number(spawnSync("id", ["-u", "postgres"], { encoding: "utf8" }).stdout.trim());
    const gid = Number(spawnSync("id", ["-g", "postgres"], { encoding: "utf8" }).stdout.trim());
    chownSync(pgDir, uid, gid);
    // its server certificate, from the cluster CA, made on the registrar's host as an operator would
    const tls = join(pgDir, "tls");
    await this.node("controller").must(["ca", "issue", "--name", "db", "--ip", this.ip("db"), "--out", tls]);
    for (const f of [tls, ...readdirSync(tls).map((x) => join(tls, x))]) chownSync(f, uid, gid);
    const pwFile = join(pgDir, "pw");
    writeFileSync(pwFile, this.pgPassword, { mode: 0o600 });
    chownSync(pwFile, uid, gid);
    const bin = pgBin();
    const data = join(pgDir, "data");
    const init = spawnSync(join(bin, "initdb"), ["-D", data, "-U", "postgres", `--pwfile=${pwFile}`, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"], { uid, gid, encoding: "utf8" });
    if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
    // only the run's /24 may connect, over TLS, with a password
    writeFileSync(join(data, "pg_hba.conf"), `local all all trust\nhostssl all all ${this.topology.address(0)}/24 scram-sha-256\n`);
    chownSync(join(data, "pg_hba.conf"), uid, gid);
    const p = this.host("db").spawn("postgres", "runuser", ["-u", "postgres", "--", join(bin, "postgres"), "-D", data, "-k", pgDir, "-p", String(Ports.pg),
      "-c", `listen_addresses=${this.ip("db")}`, "-c", "ssl=on", "-c", `ssl_cert_file=${join(tls, "server.pem")}`, "-c", `ssl_key_file=${join(tls, "server.key")}`,
      "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200"], {});
    this.procs.set("postgres", p);
    await waitFor(async () => spawnSync("ip", ["netns", "exec", this.host("db").ns, join(bin, "pg_isready"), "-q", "-h", this.ip("db"), "-p", String(Ports.pg)]).status === 0, 20_000, "postgres ready", p);
  }

  /** Each NATS node has routes to both others (its /routez). */
  private async waitNatsCluster(): Promise<void> {
    for (const h of natsHosts) await waitFor(async () => (await this.natsRoutes(h)) === 2, 15_000, `${h} routes to both others`);
  }

  /** A NATS host lost and booted again (its supervisor starts nats-server and nats-sync). */
  startNats(h: NatsHost): Promise<UnitProcess> {
    return this.startUnit(h);
  }

  /** After a SIGKILL the controller's unit restarts on failure by itself (RestartSec=1); this waits for it. */
  startController(): Promise<UnitProcess> {
    return this.startUnit("controller");
  }

  startHealthManager(h: "hm1" | "hm2"): Promise<UnitProcess> {
    return this.startUnit(h);
  }

  /** A router that drained and exited cleanly stays down until started (systemctl start). */
  startRouter(h: "router1" | "router2"): Promise<UnitProcess> {
    return this.startUnit(h);
  }

  startAgent(h: "agent1" | "agent2" | "agent3"): Promise<UnitProcess> {
    return this.startUnit(h);
  }

  private get operatorDir(): string {
    return join(this.dir, "operator");
  }

  /** The test's NATS connection: its operator user (skiff-node credentials create), over TLS. */
  busConfig(name: string): NatsConfig {
    const env = parseEnvFile(readFileSync(join(this.operatorDir, "nats.env"), "utf8"));
    return { servers: env.SKIFF_NATS_URL!.split(","), name, user: env.SKIFF_NATS_USER, credsFile: env.SKIFF_NATS_CREDS, tls: { caFile: env.SKIFF_TLS_CA!, certFile: env.SKIFF_TLS_CERT, keyFile: env.SKIFF_TLS_KEY } };
  }

  /** The controller's database, as the test reads it (TLS, verify-full against the cluster CA). */
  sql(): SQL {
    return new SQL(this.databaseUrl, { tls: { ca: readFileSync(this.caFile, "utf8") } } as any);
  }

  /** The API with the CLI's saved token, over HTTPS. */
  api(): ApiClient {
    return new ClusterApiClient(this.controllerUrl, this.cliToken(), readFileSync(this.caFile, "utf8"));
  }

  private async startLoadBalancer(): Promise<void> {
    const conf = join(this.dir, "haproxy.cfg");
    const ip = this.ip("lb");
    writeFileSync(conf, [
      `global`,
      `  maxconn 4096`,
      `defaults`,
      `  mode http`,
      `  timeout connect 1s`,
      `  timeout client 30s`,
      `  timeout server 15s`,
      `  option redispatch`,
      `  retries 2`,
      // a connection the router refused or closed before answering is retried on the other router
      `  retry-on conn-failure empty-response`,
      `frontend web`,
      `  bind ${ip}:${Ports.lb}`,
      `  default_backend routers`,
      `frontend stats`,
      `  bind ${ip}:${Ports.lbStats}`,
      `  http-request return status 200 content-type text/plain string ok if { path /ok }`,
      `  stats enable`,
      `  stats uri /stats`,
      `backend routers`,
      `  balance roundrobin`,
      `  http-reuse always`,
      // HAProxy's default check is HTTP/1.0, which uWS.js refuses (router/README.md, Known limits)
      `  option httpchk`,
      `  http-check send meth GET uri /health ver HTTP/1.1 hdr host lb-check`,
      `  timeout check 1s`,
      `  http-check expect status 200`,
      `  default-server check port ${Ports.routerStatus} inter 250ms fall 2 rise 2`,
      `  server router1 ${this.ip("router1")}:${Ports.router}`,
      `  server router2 ${this.ip("router2")}:${Ports.router}`,
      ``,
    ].join("\n"));
    const p = this.host("lb").spawn("haproxy", "haproxy", ["-f", conf, "-db"], {});
    this.procs.set("haproxy", p);
    await waitFor(() => tcpOpen(ip, Ports.lb), 10_000, "haproxy listening", p);
  }

  // --- operations the scenarios use ----------------------------------------------------------------

  /** The skiff CLI, run in the root namespace (it reaches the controller over the root veth). */
  async cli(args: string[]): Promise<{ code: number; output: string }> {
    const home = join(this.dir, "cli");
    mkdirSync(home, { recursive: true });
    const proc = Bun.spawn([bun, "cli/main.ts", ...args], { cwd: repoRoot, env: { ...process.env, SKIFF_HOME: home, SKIFF_TLS_CA: this.caFile }, stdout: "pipe", stderr: "pipe" });
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    const code = await proc.exited;
    return { code, output: out + err };
  }

  /** A NATS node's monitoring endpoint (`connz?…`, `routez?…`, `varz`), as fetched; throws if it does not answer. */
  private natsMonitor(h: NatsHost, path: string, timeoutMs = 1000): Promise<Response> {
    return fetch(`http://${this.ip(h)}:${Ports.natsMonitor}/${path}`, { signal: AbortSignal.timeout(timeoutMs) });
  }

  /** Client connections (not cluster routes) a NATS node holds, from its monitoring port; 0 if down. */
  async natsClients(h: NatsHost): Promise<number> {
    try {
      return ((await (await this.natsMonitor(h, "connz?limit=1")).json()) as { total: number }).total;
    } catch {
      return 0;
    }
  }

  /** A host's endpoints on one router, from its status port's /routes. */
  async routeEntries(router: "router1" | "router2", appHost: string): Promise<RouteEntry[]> {
    const res = await fetch(`${this.routerStatusUrl(router)}/routes`, {
      headers: { authorization: `Basic ${btoa(`${this.statusUser}:${this.statusPass}`)}` },
      signal: AbortSignal.timeout(3000),
    });
    const body = (await res.json()) as Record<string, unknown>;
    const entry = body[appHost] as unknown;
    if (!Array.isArray(entry)) return [];
    return entry.map((e: any) => ({ address: e.address, index: e.private_instance_index, appId: e.app_id, staleThresholdS: e.stale_threshold_in_seconds }));
  }

  async routeEndpoints(router: "router1" | "router2", appHost: string): Promise<string[]> {
    return (await this.routeEntries(router, appHost)).map((e) => e.address);
  }

  accessLogPath(router: "router1" | "router2"): string {
    return join(this.dir, `${router}-access.log`);
  }

  /** Both routers' access logs so far (they flush every 200 ms: wait that long after the requests). */
  accessLines(): AccessLine[] {
    return (["router1", "router2"] as const).flatMap((r) => (existsSync(this.accessLogPath(r)) ? parseAccessLog(readFileSync(this.accessLogPath(r), "utf8")).lines : []));
  }

  /** HAProxy's stats CSV, one record per proxy/server row, keyed "pxname/svname". */
  async lbStats(): Promise<Map<string, Record<string, string>>> {
    const csv = await (await fetch(`http://${this.ip("lb")}:${Ports.lbStats}/stats;csv`, { signal: AbortSignal.timeout(2000) })).text();
    const [header, ...rows] = csv.trim().split("\n");
    const names = header!.replace(/^# /, "").split(",");
    const out = new Map<string, Record<string, string>>();
    for (const row of rows) {
      const cells = row.split(",");
      const rec = Object.fromEntries(names.map((n, i) => [n, cells[i] ?? ""]));
      out.set(`${rec.pxname}/${rec.svname}`, rec);
    }
    return out;
  }

  /** Cluster routes a NATS node holds to its peers (its /routez); -1 if it does not answer. */
  async natsRoutes(h: NatsHost): Promise<number> {
    try {
      return ((await (await this.natsMonitor(h, "routez")).json()) as { num_routes: number }).num_routes;
    } catch {
      return -1;
    }
  }

  /**
   * Every NATS node's routes and client connections with their subscriptions (/routez?subs=1,
   * /connz?subs=1), written to the cluster log: a failure that looks like a lost bus message leaves the
   * interest graph behind for its reader.
   */
  async dumpNatsState(why: string): Promise<void> {
    this.mark(`NATS state (${why})`);
    for (const h of natsHosts) {
      for (const path of ["routez?subs=1", "connz?subs=1&limit=100"]) {
        const body = await this.natsMonitor(h, path)
          .then((r) => r.text())
          .catch((err: Error) => `unreachable: ${err.message}`);
        appendFileSync(this.logPath, `${h} /${path}: ${body.replace(/\s+/g, " ")}\n`);
      }
    }
  }

  /**
   * Interest one NATS node holds for a client subscription on another that the other never told it of
   * (or withdrew): for every subject a client of node A subscribes to, node B's route from A must list
   * it. Each gap is a subject whose messages published on B never reach A's subscriber.
   */
  async natsInterestGaps(): Promise<string[]> {
    const nodes = natsHosts;
    const get = async (h: NatsHost, path: string) => (await this.natsMonitor(h, path, 2000)).json() as Promise<any>;
    const ids = new Map<string, string>();
    const local = new Map<string, Map<string, string>>(); // node → subject → client name
    const routed = new Map<string, Map<string, Set<string>>>(); // node → remote node → subjects
    for (const h of nodes) {
      try {
        ids.set((await get(h, "varz")).server_id, h);
        const subs = new Map<string, string>();
        for (const conn of (await get(h, "connz?subs=1&limit=1000")).connections ?? []) for (const sub of conn.subscriptions_list ?? []) subs.set(sub, conn.name);
        local.set(h, subs);
        const byRemote = new Map<string, Set<string>>();
        for (const r of (await get(h, "routez?subs=1")).routes ?? []) {
          const set = byRemote.get(r.remote_id) ?? new Set<string>();
          for (const sub of r.subscriptions_list ?? []) set.add(sub);
          byRemote.set(r.remote_id, set);
        }
        routed.set(h, byRemote);
      } catch {
        // a node that does not answer (killed) has no clients to miss
      }
    }
    const gaps: string[] = [];
    for (const [a, subs] of local) {
      const aId = [...ids].find(([, n]) => n === a)?.[0];
      for (const [b, byRemote] of routed) {
        if (b === a || !aId) continue;
        const known = byRemote.get(aId);
        for (const [subject, client] of subs) if (!known?.has(subject)) gaps.push(`${b} does not know ${a}'s ${client} wants ${subject}${known ? "" : " (no route)"}`);
      }
    }
    return gaps;
  }

  /** Established TCP connections from a router's host to `ip`: its pooled and busy upstream connections there. */
  upstreamConnections(router: "router1" | "router2", ip: string): number {
    return this.host(router).run(["ss", "-Htn", "state", "established", "dst", ip]).split("\n").filter((l) => l.trim()).length;
  }

  /** The CLI's saved token, for a test that calls the API directly. */
  cliToken(): string {
    return (JSON.parse(readFileSync(join(this.dir, "cli", "config.json"), "utf8")) as { token: string }).token;
  }
}

export interface RouteEntry {
  address: string;
  index: string;
  appId: string;
  staleThresholdS: number;
}

function pgBin(): string {
  if (process.env.SKIFF_PG_BIN) return process.env.SKIFF_PG_BIN;
  const root = "/usr/lib/postgresql";
  const versions = spawnSync("ls", [root], { encoding: "utf8" }).stdout.split(/\s+/).filter(Boolean).sort((a, b) => Number(b) - Number(a));
  return join(root, versions[0] ?? "15", "bin");
}

/** The first line a TCP server sends (nats-server's INFO), or "" within the timeout. */
async function firstLine(host: string, port: number, timeoutMs = 2000): Promise<string> {
  const { connect } = await import("node:net");
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let text = "";
    const done = () => (clearTimeout(t), s.destroy(), resolve(text.split("\n")[0]!));
    const t = setTimeout(done, timeoutMs);
    s.on("data", (d) => ((text += d.toString()), text.includes("\n") && done()));
    s.once("error", done);
  });
}

/** "ok" when a TLS handshake with `host:port` verifies its certificate (IP in the SAN) against `ca`, else why not. */
async function tlsHandshake(host: string, port: number, creds: { ca: string; cert: string; key: string }, timeoutMs = 3000): Promise<string> {
  const { connect } = await import("node:tls");
  return new Promise((resolve) => {
    const s = connect({ host, port, ...creds, servername: undefined, rejectUnauthorized: true });
    const done = (why: string) => (clearTimeout(t), s.destroy(), resolve(why));
    const t = setTimeout(() => done("timed out"), timeoutMs);
    s.once("secureConnect", () => done(s.authorized ? "ok" : String(s.authorizationError)));
    s.once("error", (err: Error) => done(err.message));
  });
}

export async function tcpOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  const { connect } = await import("node:net");
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const t = setTimeout(() => (s.destroy(), resolve(false)), timeoutMs);
    s.once("connect", () => (clearTimeout(t), s.destroy(), resolve(true)));
    s.once("error", () => (clearTimeout(t), resolve(false)));
  });
}

export async function waitFor(probe: () => Promise<boolean> | boolean, timeoutMs: number, what: string, p?: HostProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    if (p && !p.alive()) throw new Error(`${p.name} exited while waiting for ${what}:\n${p.output().slice(-3000)}`);
    await Bun.sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${p ? `:\n${p.output().slice(-3000)}` : ""}`);
}
