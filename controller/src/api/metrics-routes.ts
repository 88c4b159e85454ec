// /v3/apps/:guid/metrics (an app's last hour: requests/s, 5xx/s and latency from the routers, CPU and
// memory per instance) and /v3/cluster (agents, routers, the health manager: admins only), served
// from the controller's MetricsCollector. Who may read is decided as for every app route (loadApp).

import { Elysia, t } from "elysia";
import type { MetricsCollector } from "../metrics/metrics-collector.ts";
import { loadApp } from "./apps-routes.ts";
import { accessOf, authenticate } from "./auth.ts";
import type { ControllerContext } from "./context.ts";
import { badRequest } from "./errors.ts";

export function metricsRoutes(ctx: ControllerContext, metrics: MetricsCollector) {
  const { store } = ctx;
  const auth = async (request: Request) => accessOf(store, await authenticate(store, request));
  const about = () => ({
    interval_seconds: metrics.config.intervalMs / 1000,
    window_seconds: metrics.config.windowMs / 1000,
    last_collection_at: metrics.lastCollectionAt || null,
  });

  return new Elysia({ name: "metrics" })
    .get("/v3/apps/:guid/metrics", async ({ request, params, query }) => {
      const access = await auth(request);
      const app = await loadApp(ctx, access, params.guid);
      const since = query.since === undefined ? 0 : Number(query.since);
      if (!Number.isFinite(since) || since < 0) throw badRequest("since must be a time in ms since the epoch");
      const h = metrics.history;
      const routers = metrics.routers().scraped;
      return {
        ...about(),
        // per app from the routers' per-route counters; p50/p99 per app only where the routers keep a per-route histogram
        requests: h.appSeries(app.guid, since) ?? { t: [], rps: [], errors_per_second: [], p50_ms: [], p99_ms: [] },
        // every router's latency, whatever the route (what the routers measure today)
        router_latency: (({ t, p50_ms, p99_ms }) => ({ t, p50_ms, p99_ms }))(h.routers.toColumns(since)),
        routers: { scraped: routers.filter((r) => r.ok).length, configured: routers.length },
        instances: h.instanceSeries(app.guid, since).map((s) => ({ instance_id: s.instance_id, index: s.index, t: s.series.t, cpu: s.series.cpu, mem_bytes: s.series.mem_bytes })),
      };
    }, { query: t.Object({ since: t.Optional(t.String()) }), detail: { summary: "An app's last hour: requests/s, 5xx/s and latency from the routers, CPU % and memory per instance (the controller's in-memory history)" } })

    .get("/v3/cluster", async ({ request }) => {
      (await auth(request)).requireAdmin();
      const now = Date.now();
      return {
        ...about(),
        agents: metrics.agentsView(now),
        routers: metrics.routers(),
        // requests and latency over every router, the last hour
        router_history: metrics.history.routers.toColumns(),
        health_manager: await metrics.healthManager(now),
        history: { ...metrics.history.counts(), limits: metrics.history.limits },
      };
    }, { detail: { summary: "The cluster (admins): agents with capacity and load, routers with request rates, the health manager's leader" } });
}
