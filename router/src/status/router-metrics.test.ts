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

test("a forgotten route's series go, and its slot is free for a new route past the 10,000 cap (issue 5)", () => {
  const m = new RouterMetrics();
  for (let i = 0; i < 10_000; i++) m.recordRequest(200, `r${i}.example.com`, 1);
  m.recordRequest(200, "late.example.com", 1);
  expect(m.render(sources())).not.toContain('route="late.example.com"');
  m.forgetRoute("r0.example.com");
  m.recordRequest(200, "late.example.com", 1);
  const text = m.render(sources());
  expect(text).not.toContain('route="r0.example.com"');
  expect(text).toContain('skiff_router_route_requests_total{route="late.example.com",class="2xx"} 1');
});
