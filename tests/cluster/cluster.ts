// A real multi-host skiff cluster on one machine (issue 10), on the hosts of topology.ts:
// PostgreSQL, a 3-node nats-server cluster, the controller, two health managers, three agents in two
// zones, two routers and HAProxy in front of them. Every component runs as its own process inside
// its host's namespace, with the same env vars an operator would set.

import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseAccessLog, type AccessLine } from "./inherent.ts";
import { Topology, type Host, type HostProcess } from "./topology.ts";

export const repoRoot = resolve(import.meta.dir, "../..");
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

export const agentZones: Record<string, string> = { agent1: "zone-a", agent2: "zone-a", agent3: "zone-b" };

export interface ClusterTimings {
  /** router prune threshold and interval, agent re-register interval: shortened so a test sees a prune */
  staleThresholdS: number;
  pruneIntervalS: number;
  registerMs: number;
  drainS: number;
}

export const defaultTimings: ClusterTimings = { staleThresholdS: 20, pruneIntervalS: 5, registerMs: 5000, drainS: 2 };

export class SkiffCluster {
  readonly dir: string;
  readonly domain = "skiff.test";
  readonly adminPassword = randomBytes(12).toString("base64url");
  readonly natsUser = "skiff";
  readonly natsPass = randomBytes(12).toString("base64url");
  readonly pgPassword = randomBytes(12).toString("base64url");
  readonly statusUser = "router-status";
  readonly statusPass = randomBytes(12).toString("base64url");
  readonly procs = new Map<string, HostProcess>();
  readonly timings: ClusterTimings;
  topology!: Topology;

  constructor(opts: { timings?: Partial<ClusterTimings> } = {}) {
    this.dir = mkdtempSync(join(tmpdir(), "skiff-cluster-"));
    chmodSync(this.dir, 0o711); // postgres and the instances' unprivileged user pass through it
    this.timings = { ...defaultTimings, ...opts.timings };
  }

  ip(host: keyof typeof Layout): string {
    return this.topology.address(Layout[host]);
  }
  get natsUrl(): string {
    return (["nats1", "nats2", "nats3"] as const).map((h) => `nats://${this.ip(h)}:${Ports.nats}`).join(",");
  }
  get controllerUrl(): string {
    return `http://${this.ip("controller")}:${Ports.controller}`;
  }
  get lbUrl(): string {
    return `http://${this.ip("lb")}:${Ports.lb}`;
  }
  get databaseUrl(): string {
    return `postgres://postgres:${this.pgPassword}@${this.ip("db")}:${Ports.pg}/postgres`;
  }
  routerStatusUrl(router: "router1" | "router2"): string {
    return `http://${this.ip(router)}:${Ports.routerStatus}`;
  }
  host(name: keyof typeof Layout): Host {
    return this.topology.host(name);
  }
  proc(name: string): HostProcess {
    const p = this.procs.get(name);
    if (!p) throw new Error(`no process ${name}`);
    return p;
  }

  private common(): Record<string, string> {
    return {
      SKIFF_NATS_URL: this.natsUrl,
      SKIFF_NATS_USER: this.natsUser,
      SKIFF_NATS_PASS: this.natsPass,
      SKIFF_DOMAIN: this.domain,
      SKIFF_CONTROLLER_URL: this.controllerUrl,
      SKIFF_DATABASE_URL: this.databaseUrl,
    };
  }

  async start(): Promise<void> {
    this.topology = Topology.create({ logFile: this.logPath });
    for (const [name, n] of Object.entries(Layout)) this.topology.addHost(name, n);
    await this.startPostgres();
    await Promise.all((["nats1", "nats2", "nats3"] as const).map((h) => this.startNats(h)));
    await this.waitNatsCluster();
    await this.startController();
    await Promise.all([this.startHealthManager("hm1"), this.startHealthManager("hm2")]);
    await Promise.all([this.startRouter("router1"), this.startRouter("router2")]);
    await Promise.all((["agent1", "agent2", "agent3"] as const).map((a) => this.startAgent(a)));
    await this.startLoadBalancer();
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
    const pw = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
    const uid = Number(pw.stdout.trim());
    const gid = Number(spawnSync("id", ["-g", "postgres"], { encoding: "utf8" }).stdout.trim());
    chownSync(pgDir, uid, gid);
    const pwFile = join(pgDir, "pw");
    writeFileSync(pwFile, this.pgPassword, { mode: 0o600 });
    chownSync(pwFile, uid, gid);
    const bin = pgBin();
    const data = join(pgDir, "data");
    const init = spawnSync(join(bin, "initdb"), ["-D", data, "-U", "postgres", `--pwfile=${pwFile}`, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"], { uid, gid, encoding: "utf8" });
    if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
    // only the run's /24 may connect, with a password
    writeFileSync(join(data, "pg_hba.conf"), `local all all trust\nhost all all ${this.topology.address(0)}/24 scram-sha-256\n`);
    chownSync(join(data, "pg_hba.conf"), uid, gid);
    const p = this.host("db").spawn("postgres", "runuser", ["-u", "postgres", "--", join(bin, "postgres"), "-D", data, "-k", pgDir, "-p", String(Ports.pg),
      "-c", `listen_addresses=${this.ip("db")}`, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200"], {});
    this.procs.set("postgres", p);
    await waitFor(async () => spawnSync("ip", ["netns", "exec", this.host("db").ns, join(bin, "pg_isready"), "-q", "-h", this.ip("db"), "-p", String(Ports.pg)]).status === 0, 20_000, "postgres ready", p);
  }

  async startNats(h: "nats1" | "nats2" | "nats3"): Promise<HostProcess> {
    const ip = this.ip(h);
    const others = (["nats1", "nats2", "nats3"] as const).filter((x) => x !== h).map((x) => `nats-route://${this.ip(x)}:${Ports.natsCluster}`);
    const conf = join(this.dir, `${h}.conf`);
    writeFileSync(conf, [
      `server_name: ${h}`,
      `listen: ${ip}:${Ports.nats}`,
      `authorization { user: "${this.natsUser}", password: "${this.natsPass}" }`,
      `max_payload: 1MB`,
      `http: ${ip}:${Ports.natsMonitor}`,
      `cluster { name: skiff, listen: ${ip}:${Ports.natsCluster}, routes: [${others.join(", ")}] }`,
      ``,
    ].join("\n"), { mode: 0o600 });
    const p = this.host(h).spawn(h, "nats-server", ["-c", conf], {});
    this.procs.set(h, p);
    await waitFor(() => tcpOpen(ip, Ports.nats), 10_000, `${h} listening`, p);
    return p;
  }

  /** Each node has routes to both others (nats-server logs "Route connection created"). */
  private async waitNatsCluster(): Promise<void> {
    for (const h of ["nats1", "nats2", "nats3"]) {
      const p = this.proc(h);
      await waitFor(() => (p.output().match(/Route connection created/g) ?? []).length >= 2, 15_000, `${h} routes`, p);
    }
  }

  async startController(): Promise<HostProcess> {
    const p = this.host("controller").spawn("controller", bun, ["controller/main.ts"], {
      ...this.common(),
      SKIFF_CONTROLLER_PORT: String(Ports.controller),
      SKIFF_CONTROLLER_PUBLIC_URL: this.controllerUrl,
      SKIFF_DATA_DIR: join(this.dir, "controller"),
      SKIFF_BOOTSTRAP_ADMIN_PASSWORD: this.adminPassword,
    }, repoRoot);
    this.procs.set("controller", p);
    await waitReady(p, 30_000);
    return p;
  }

  async startHealthManager(h: "hm1" | "hm2"): Promise<HostProcess> {
    const p = this.host(h).spawn(h, bun, ["controller/health-main.ts"], { ...this.common(), SKIFF_DATA_DIR: join(this.dir, h) }, repoRoot);
    this.procs.set(h, p);
    await waitReady(p, 30_000);
    return p;
  }

  async startRouter(h: "router1" | "router2"): Promise<HostProcess> {
    if (!existsSync(join(repoRoot, "router/dist/router.mjs"))) {
      const b = spawnSync("node", ["scripts/setup.mjs", "--build-only"], { cwd: repoRoot, encoding: "utf8" });
      if (b.status !== 0) throw new Error(`router build failed: ${b.stderr}`);
    }
    const p = this.host(h).spawn(h, "node", ["router/dist/router.mjs"], {
      ...this.common(),
      SKIFF_ROUTER_PORT: String(Ports.router),
      SKIFF_ROUTER_STATUS_PORT: String(Ports.routerStatus),
      SKIFF_ROUTER_STATUS_USER: this.statusUser,
      SKIFF_ROUTER_STATUS_PASS: this.statusPass,
      SKIFF_ROUTER_HOST: this.ip(h),
      SKIFF_ROUTER_DRAIN_SECONDS: String(this.timings.drainS),
      SKIFF_ROUTER_STALE_THRESHOLD_SECONDS: String(this.timings.staleThresholdS),
      SKIFF_ROUTER_PRUNE_INTERVAL_SECONDS: String(this.timings.pruneIntervalS),
      SKIFF_ROUTER_REGISTER_INTERVAL_SECONDS: String(Math.round(this.timings.registerMs / 1000)),
      SKIFF_ROUTER_CONNECT_TIMEOUT_MS: "1000",
      SKIFF_ROUTER_RESPONSE_TIMEOUT_MS: "10000",
      // which endpoint each failed request went to: what tells an inherent failure from a lost retry
      SKIFF_ROUTER_ACCESS_LOG: this.accessLogPath(h),
    }, repoRoot);
    this.procs.set(h, p);
    await waitReady(p, 30_000);
    return p;
  }

  async startAgent(h: "agent1" | "agent2" | "agent3"): Promise<HostProcess> {
    const dir = join(this.dir, h);
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o711);
    const p = this.host(h).spawn(h, bun, ["agent/main.ts"], {
      ...this.common(),
      SKIFF_AGENT_ID: `${h}-${this.topology.id}`,
      SKIFF_AGENT_DIR: dir,
      SKIFF_DATA_DIR: dir,
      SKIFF_AGENT_ZONE: agentZones[h]!,
      SKIFF_AGENT_IP: this.ip(h),
      SKIFF_AGENT_REGISTER_MS: String(this.timings.registerMs),
      SKIFF_AGENT_MEMORY_MB: "2048",
    }, repoRoot);
    this.procs.set(h, p);
    await waitReady(p, 30_000);
    return p;
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
    const proc = Bun.spawn([bun, "cli/main.ts", ...args], { cwd: repoRoot, env: { ...process.env, SKIFF_HOME: home }, stdout: "pipe", stderr: "pipe" });
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    const code = await proc.exited;
    return { code, output: out + err };
  }

  /** Client connections (not cluster routes) a NATS node holds, from its monitoring port; 0 if down. */
  async natsClients(h: "nats1" | "nats2" | "nats3"): Promise<number> {
    try {
      const res = await fetch(`http://${this.ip(h)}:${Ports.natsMonitor}/connz?limit=1`, { signal: AbortSignal.timeout(1000) });
      return ((await res.json()) as { total: number }).total;
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
  async natsRoutes(h: "nats1" | "nats2" | "nats3"): Promise<number> {
    try {
      const res = await fetch(`http://${this.ip(h)}:${Ports.natsMonitor}/routez`, { signal: AbortSignal.timeout(1000) });
      return ((await res.json()) as { num_routes: number }).num_routes;
    } catch {
      return -1;
    }
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

export async function waitReady(p: HostProcess, timeoutMs: number): Promise<void> {
  await waitFor(() => /\bready\b/.test(p.output()), timeoutMs, `${p.name} ready`, p);
}
