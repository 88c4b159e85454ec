import { expect, test } from "bun:test";
import { RouterMetrics, type MetricsSources } from "./router-metrics.ts";

const sources = (over: Partial<MetricsSources> = {}): MetricsSources => ({
  routes: () => 0,
  endpoints: () => 0,
  bus: () => ({ accepted: {}, rejected: {}, handlerErrors: {} }),
  activeRequests: () => 0,
  ...over,
});

test("route changes that threw while applied are exported by subject (issue 5)", () => {
  const text = new RouterMetrics().render(sources({ routeApplyErrors: () => ({ "router.register": 2 }) }));
  expect(text).toContain('skiff_router_bus_messages_total{subject="router.register",outcome="apply_error"} 2');
});
