// The shell around MetricsHistory: every interval it scrapes each router's /metrics (with the status
// credentials) and asks the agents for every started app's instance stats (dea.find.droplet with
// include_stats, as `skiff app` does), and records the rates and usage. It also keeps what the cluster
// page shows: the routers heard on the bus (router.start), the agents (dea.advertise) and the health
// manager's lease. Nothing here decides who may see what: the API routes that read it do.

import { readFileSync } from "node:fs";
import { Subjects, type Bus, type DeaAdvertise, type DeaFindDropletReply, type Logger, type Subscription } from "../../../bus/index.ts";
import type { Store } from "../db/store.ts";
import type { ActualState } from "../health/actual-state.ts";
import { LEASE_NAME } from "../health/manager.ts";
import { MetricsHistory } from "./metrics-history.ts";
import type { MetricsConfig } from "./metrics-config.ts";
import { addBuckets, bucketIncrease, bucketsOf, counterIncrease, parsePrometheusText, quantileOf, type Buckets, type PromSample } from "./prometheus-text.ts";

const ROUTE_COUNTER = "skiff_router_route_requests_total";
const ALL_COUNTER = "skiff_router_requests_total";
const LATENCY = "skiff_router_request_duration_seconds_bucket";
/** a per-route latency histogram, if a router serves one; used per app when present */
const ROUTE_LATENCY = "skiff_router_route_request_duration_seconds_bucket";
const SCRAPE_TIMEOUT_MS = 2_000;

interface Scrape {
  at: number;
  /** route → status class → count */
  routes: Map<string, Map<string, number>>;
  all: Map<string, number>;
  latency: Buckets;
  routeLatency: Map<string, Buckets>;
}

export interface RouterView {
  url: string;
  /** from router.start, when the URL was learned from the bus */
  id: string | null;
  ok: boolean;
  error: string | null;
  last_scrape_at: number | null;
  routes: number | null;
  endpoints: number | null;
  rps: number | null;
  errors_per_second: number | null;
  p50_ms: number | null;
  p99_ms: number | null;
  /** the busiest routes over the last interval */
  top_routes: { route: string; rps: number; errors_per_second: number }[];
}

interface RouterTarget {
  url: string;
  id: string | null;
  prev?: Scrape;
  view: RouterView;
}

interface AgentSeen {
  msg: DeaAdvertise;
  heardAt: number;
}

export interface CollectorDeps {
  bus: Bus;
  store: Store;
  actual: ActualState;
  log: Logger;
  findTimeoutMs: number;
}

export class MetricsCollector {
  readonly history: MetricsHistory;
  private readonly targets = new Map<string, RouterTarget>();
  /** routers heard on the bus, by id */
  private readonly routersHeard = new Map<string, { id: string; hosts: string[]; heardAt: number }>();
  private readonly agents = new Map<string, AgentSeen>();
  /** the newest instance replies per app, for the cluster page's per-agent load */
  private readonly latestInstances = new Map<string, { at: number; replies: DeaFindDropletReply[] }>();
  private readonly subs: Subscription[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  private running: Promise<void> | undefined;
  lastCollectionAt = 0;
  lastCollectionMs = 0;

  constructor(private readonly deps: CollectorDeps, readonly config: MetricsConfig) {
    this.history = new MetricsHistory({ points: Math.ceil(config.windowMs / config.intervalMs), maxApps: config.maxApps, maxInstances: config.maxInstances });
    for (const url of config.routerStatusUrls) this.targets.set(url, newTarget(url, null));
  }

  start(): void {
    const { bus } = this.deps;
    this.subs.push(
      bus.subscribe(Subjects.deaAdvertise, "dea.advertise", (m) => void this.agents.set(m.id, { msg: m, heardAt: Date.now() })),
      bus.subscribe(Subjects.deaShutdown, "dea.shutdown", (m) => void this.agents.delete(m.id)),
    );
    // Learning routers from the bus needs the controller's NATS user to subscribe to router.start and
    // publish router.greet (bus/nats-permissions.ts grants neither today): only without configured URLs.
    if (this.config.routerStatusUrls.length === 0) {
      this.subs.push(bus.subscribe(Subjects.routerStart, "router.start", (m) => this.heardRouter(m.id, m.hosts)));
      bus.requestMany(Subjects.routerGreet, "router.greet", {}, "router.start", { timeoutMs: 1000 })
        .then((rs) => rs.forEach((m) => this.heardRouter(m.id, m.hosts)))
        .catch(() => undefined);
    }
    this.timer = setInterval(() => void this.collect(), this.config.intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.subs.splice(0).forEach((s) => s.unsubscribe());
    await this.running;
  }

  /** One collection; a call while one runs waits for it instead of starting another. */
  collect(): Promise<void> {
    this.running ??= (async () => {
      const t0 = performance.now();
      const now = Date.now();
      try {
        await Promise.all([this.scrapeRouters(now), this.sampleInstances(now)]);
        this.history.forgetOlderThan(now - this.config.windowMs);
      } catch (err) {
        this.deps.log.warn("metrics collection failed", { error: err as Error });
      } finally {
        this.lastCollectionAt = now;
        this.lastCollectionMs = performance.now() - t0;
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private heardRouter(id: string, hosts: string[]): void {
    this.routersHeard.set(id, { id, hosts, heardAt: Date.now() });
    if (!hosts[0]) return;
    const url = `http://${hosts[0].includes(":") ? `[${hosts[0]}]` : hosts[0]}:${this.config.routerStatusPort}`;
    const t = this.targets.get(url);
    if (t) t.id = t.view.id = id;
    else this.targets.set(url, newTarget(url, id));
  }

  private authorization(): string | undefined {
    let pass = this.config.routerStatusPass;
    if (pass === undefined && this.config.routerStatusPassFile) {
      try {
        pass = readFileSync(this.config.routerStatusPassFile, "utf8").trim();
      } catch {
        return undefined;
      }
    }
    return pass === undefined ? undefined : `Basic ${Buffer.from(`${this.config.routerStatusUser}:${pass}`).toString("base64")}`;
  }

  private async scrapeRouters(now: number): Promise<void> {
    const auth = this.authorization();
    const scrapes = await Promise.all([...this.targets.values()].map(async (t) => ({ t, s: await this.scrapeOne(t, auth, now) })));
    // per route, over every router that answered: increase by class, and latency buckets
    const routeInc = new Map<string, { total: number; errors: number }>();
    const routeLat = new Map<string, Buckets>();
    let routerLat: Buckets | undefined;
    let all = 0, allErrors = 0, seconds = 0, answered = 0;
    for (const { t, s } of scrapes) {
      if (!s) continue;
      answered++;
      const prev = t.prev;
      t.prev = s;
      if (!prev) continue;
      const dt = (s.at - prev.at) / 1000;
      if (dt <= 0) continue;
      seconds = Math.max(seconds, dt);
      const top: RouterView["top_routes"] = [];
      for (const [route, byClass] of s.routes) {
        const before = prev.routes.get(route);
        let total = 0, errors = 0;
        for (const [cls, n] of byClass) {
          const inc = counterIncrease(before?.get(cls) ?? 0, n); // a route new since the last scrape counted from 0
          total += inc;
          if (cls === "5xx") errors += inc;
        }
        const acc = routeInc.get(route) ?? { total: 0, errors: 0 };
        acc.total += total / dt;
        acc.errors += errors / dt;
        routeInc.set(route, acc);
        if (total > 0) top.push({ route, rps: total / dt, errors_per_second: errors / dt });
        const lat = s.routeLatency.get(route);
        if (lat) routeLat.set(route, addBuckets(routeLat.get(route), bucketIncrease(prev.routeLatency.get(route), lat)));
      }
      let total = 0, errors = 0;
      for (const [cls, n] of s.all) {
        const inc = counterIncrease(prev.all.get(cls) ?? 0, n);
        total += inc;
        if (cls === "5xx") errors += inc;
      }
      all += total / dt;
      allErrors += errors / dt;
      const lat = bucketIncrease(prev.latency, s.latency);
      routerLat = addBuckets(routerLat, lat);
      Object.assign(t.view, {
        rps: total / dt, errors_per_second: errors / dt, p50_ms: ms(quantileOf(lat, 0.5)), p99_ms: ms(quantileOf(lat, 0.99)),
        top_routes: top.sort((a, b) => b.rps - a.rps).slice(0, 20),
      });
    }
    if (answered === 0 || seconds === 0) return;
    this.history.routers.push(now, [all, allErrors, ms(quantileOf(routerLat ?? [], 0.5)), ms(quantileOf(routerLat ?? [], 0.99))]);
    // per app: the sum over its routes (a route mapped to two apps counts for both)
    const perApp = new Map<string, { rps: number; errors: number; lat?: Buckets }>();
    for (const { app_guid, uri } of await this.routeMappings()) {
      const acc = perApp.get(app_guid) ?? { rps: 0, errors: 0 };
      const inc = routeInc.get(uri);
      if (inc) (acc.rps += inc.total), (acc.errors += inc.errors);
      const lat = routeLat.get(uri);
      if (lat) acc.lat = addBuckets(acc.lat, lat);
      perApp.set(app_guid, acc);
    }
    for (const [app, v] of perApp)
      this.history.recordApp(app, now, { rps: v.rps, errors_per_second: v.errors, p50_ms: v.lat && ms(quantileOf(v.lat, 0.5)), p99_ms: v.lat && ms(quantileOf(v.lat, 0.99)) });
  }

  private async scrapeOne(t: RouterTarget, auth: string | undefined, now: number): Promise<Scrape | undefined> {
    try {
      const res = await fetch(`${t.url}/metrics`, { headers: auth ? { authorization: auth } : {}, signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
      if (!res.ok) throw new Error(res.status === 401 ? "401: the status credentials are missing or wrong (SKIFF_ROUTER_STATUS_PASS/_FILE)" : `answered ${res.status}`);
      const samples = parsePrometheusText(await res.text());
      const s = scrapeOf(samples, now);
      const gauge = (name: string) => samples.find((x) => x.name === name)?.value ?? null;
      Object.assign(t.view, { ok: true, error: null, last_scrape_at: now, routes: gauge("skiff_router_routes"), endpoints: gauge("skiff_router_endpoints") });
      return s;
    } catch (err) {
      if (t.view.ok || t.view.error === null) this.deps.log.warn("router metrics scrape failed", { url: t.url, error: err as Error });
      Object.assign(t.view, { ok: false, error: (err as Error).message });
      t.prev = undefined;
      return undefined;
    }
  }

  private async routeMappings(): Promise<{ app_guid: string; uri: string }[]> {
    const rows = await this.deps.store.db.all<{ app_guid: string; host: string; domain: string; path: string }>(
      `SELECT m.app_guid, r.host, d.name AS domain, r.path FROM route_mappings m JOIN routes r ON r.guid = m.route_guid JOIN domains d ON d.guid = r.domain_guid`,
    );
    return rows.map((r) => ({ app_guid: r.app_guid, uri: `${r.host ? r.host + "." : ""}${r.domain}${r.path}`.toLowerCase() }));
  }

  private async sampleInstances(now: number): Promise<void> {
    const { bus, store, actual, findTimeoutMs } = this.deps;
    const apps = await store.startedApps();
    const seen = new Set<string>();
    await Promise.all(apps.map(async (app) => {
      seen.add(app.guid);
      const known = actual.liveOf(app.guid, now).length;
      if (known === 0) return void this.latestInstances.delete(app.guid);
      const replies = await bus.requestMany(Subjects.deaFindDroplet, "dea.find.droplet", { droplet: app.guid, include_stats: true }, "dea.find.droplet.reply", {
        timeoutMs: findTimeoutMs, max: known,
      }).catch(() => [] as DeaFindDropletReply[]);
      this.latestInstances.set(app.guid, { at: now, replies });
      for (const r of replies) {
        if (r.state !== "RUNNING" || !r.stats) continue;
        this.history.recordInstance(app.guid, r.instance, r.index, now, r.stats.usage.cpu, r.stats.usage.mem);
      }
    }));
    for (const app of this.latestInstances.keys()) if (!seen.has(app)) this.latestInstances.delete(app);
  }

  // ---- what the cluster page shows ----

  routers(): { scraped: RouterView[]; heard: { id: string; hosts: string[]; heard_at: number }[] } {
    return {
      scraped: [...this.targets.values()].map((t) => ({ ...t.view })),
      heard: [...this.routersHeard.values()].map((r) => ({ id: r.id, hosts: r.hosts, heard_at: r.heardAt })),
    };
  }

  /** Agents heard within 10 s (the registry's TTL), with the instances and usage last seen on each. */
  agentsView(now = Date.now()) {
    const load = new Map<string, { instances: number; cpu: number; mem_bytes: number; reserved_mb: number }>();
    for (const { replies } of this.latestInstances.values())
      for (const r of replies) {
        const l = load.get(r.dea) ?? { instances: 0, cpu: 0, mem_bytes: 0, reserved_mb: 0 };
        l.instances++;
        l.cpu += r.stats?.usage.cpu ?? 0;
        l.mem_bytes += r.stats?.usage.mem ?? 0;
        l.reserved_mb += (r.stats?.quotas.mem ?? 0) / 1048576; // quotas are in bytes
        load.set(r.dea, l);
      }
    const out = [];
    for (const [id, a] of this.agents) {
      if (now - a.heardAt > 10_000) {
        this.agents.delete(id);
        continue;
      }
      const l = load.get(id) ?? { instances: 0, cpu: 0, mem_bytes: 0, reserved_mb: 0 };
      out.push({
        id, ip: a.msg.ip, zone: a.msg.placement_properties?.zone ?? "default", stacks: a.msg.stacks, heard_at: a.heardAt,
        available_memory_mb: a.msg.available_memory, available_disk_mb: a.msg.available_disk,
        instances: Object.values(a.msg.app_id_to_count).reduce((s, n) => s + n, 0),
        apps: Object.keys(a.msg.app_id_to_count).length,
        usage: { cpu: l.cpu, mem_bytes: l.mem_bytes, reserved_memory_mb: l.reserved_mb, sampled_instances: l.instances },
      });
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  /** The health manager acting now: the holder of its lease, renewed on every pass (so the last pass is about a lease TTL before expiry). */
  async healthManager(now = Date.now()) {
    const row = await this.deps.store.db.get<{ holder: string; expires_at: number }>(`SELECT holder, expires_at FROM leases WHERE name = ?`, [LEASE_NAME]);
    if (!row) return { leader: null, lease_expires_at: null, live: false };
    return { leader: row.holder, lease_expires_at: Number(row.expires_at), live: Number(row.expires_at) > now };
  }
}

function newTarget(url: string, id: string | null): RouterTarget {
  return { url, id, view: { url, id, ok: false, error: "not scraped yet", last_scrape_at: null, routes: null, endpoints: null, rps: null, errors_per_second: null, p50_ms: null, p99_ms: null, top_routes: [] } };
}

function scrapeOf(samples: PromSample[], at: number): Scrape {
  const routes = new Map<string, Map<string, number>>();
  const all = new Map<string, number>();
  const routeLatency = new Map<string, Buckets>();
  for (const s of samples) {
    if (s.name === ROUTE_COUNTER && s.labels.route !== undefined && s.labels.class !== undefined) {
      const route = s.labels.route.toLowerCase();
      let m = routes.get(route);
      if (!m) routes.set(route, (m = new Map()));
      m.set(s.labels.class, (m.get(s.labels.class) ?? 0) + s.value);
    } else if (s.name === ALL_COUNTER && s.labels.class !== undefined) all.set(s.labels.class, s.value);
    else if (s.name === ROUTE_LATENCY && s.labels.route !== undefined && s.labels.le !== undefined) {
      const route = s.labels.route.toLowerCase();
      const b = routeLatency.get(route) ?? [];
      b.push([s.labels.le === "+Inf" ? Infinity : Number(s.labels.le), s.value]);
      routeLatency.set(route, b);
    }
  }
  for (const b of routeLatency.values()) b.sort((x, y) => x[0] - y[0]);
  return { at, routes, all, latency: bucketsOf(samples, LATENCY), routeLatency };
}

const ms = (seconds: number | undefined) => (seconds === undefined ? undefined : seconds * 1000);
