// What the controller's metrics collector measures, how often, how much it keeps, and how it reaches
// the routers' /metrics: read once from the environment by main.ts.

export interface MetricsConfig {
  /** one collection (router scrape + instance stats) every… */
  intervalMs: number;
  /** how far back the history goes */
  windowMs: number;
  maxApps: number;
  maxInstances: number;
  /**
   * The routers' status endpoints, e.g. `http://10.0.0.5:8081`. Empty: the routers heard on the bus
   * (`router.start`, and the replies to `router.greet`) at `http://<host>:<routerStatusPort>`.
   */
  routerStatusUrls: string[];
  routerStatusPort: number;
  /** the routers' status credentials (issue 24): the same SKIFF_ROUTER_STATUS_* the routers read */
  routerStatusUser: string;
  routerStatusPass?: string;
  /** read at every scrape, so a router that makes the file after the controller starts is still reached */
  routerStatusPassFile?: string;
}

export const DEFAULT_METRICS: MetricsConfig = {
  intervalMs: 5_000,
  windowMs: 3_600_000,
  maxApps: 1_000,
  maxInstances: 2_000,
  routerStatusUrls: [],
  routerStatusPort: 8081,
  routerStatusUser: "router-status",
};

/**
 * SKIFF_METRICS_INTERVAL_SECONDS (5), SKIFF_ROUTER_STATUS_URLS (comma-separated), SKIFF_ROUTER_STATUS_PORT
 * (8081, for routers learned from the bus), SKIFF_ROUTER_STATUS_USER (router-status),
 * SKIFF_ROUTER_STATUS_PASS or SKIFF_ROUTER_STATUS_PASS_FILE.
 */
export function metricsConfigFromEnv(env: Record<string, string | undefined>): MetricsConfig {
  const c: MetricsConfig = { ...DEFAULT_METRICS };
  const seconds = env.SKIFF_METRICS_INTERVAL_SECONDS;
  if (seconds) {
    const n = Number(seconds);
    if (!(n >= 0.1 && n <= 3600)) throw new Error(`SKIFF_METRICS_INTERVAL_SECONDS="${seconds}" must be a number of seconds from 0.1 to 3600`);
    c.intervalMs = Math.round(n * 1000);
  }
  if (env.SKIFF_ROUTER_STATUS_URLS) {
    c.routerStatusUrls = env.SKIFF_ROUTER_STATUS_URLS.split(",").map((u) => u.trim().replace(/\/+$/, "")).filter(Boolean);
    for (const u of c.routerStatusUrls) if (!/^https?:\/\/[^/]+$/.test(u)) throw new Error(`SKIFF_ROUTER_STATUS_URLS: "${u}" is not a base URL like http://10.0.0.5:8081`);
  }
  if (env.SKIFF_ROUTER_STATUS_PORT) c.routerStatusPort = Number(env.SKIFF_ROUTER_STATUS_PORT);
  if (env.SKIFF_ROUTER_STATUS_USER) c.routerStatusUser = env.SKIFF_ROUTER_STATUS_USER;
  if (env.SKIFF_ROUTER_STATUS_PASS) c.routerStatusPass = env.SKIFF_ROUTER_STATUS_PASS;
  if (env.SKIFF_ROUTER_STATUS_PASS_FILE) c.routerStatusPassFile = env.SKIFF_ROUTER_STATUS_PASS_FILE;
  return c;
}
