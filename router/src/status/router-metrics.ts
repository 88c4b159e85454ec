// The router's counters, rendered as Prometheus text on the status port. Recording a request is a
// few array increments and one map lookup; rendering happens only when /metrics is scraped.

import type { BusCounters } from "../../../bus/index.ts";

/** Upper bounds of the latency histogram, in seconds. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

export interface MetricsSources {
  routes: () => number;
  endpoints: () => number;
  bus: () => BusCounters;
  /** route changes that passed validation but threw while applied, by subject */
  routeApplyErrors?: () => Readonly<Record<string, number>>;
  /** access log lines dropped (buffer full or write failed); absent when the log is off */
  accessLogDropped?: () => number;
  activeRequests: () => number;
  /** event-loop delay percentiles in ms (how long a request can wait behind other work) */
  loopDelay?: () => { p50: number; p99: number; max: number };
}

export class RouterMetrics {
  private readonly byClass = new Float64Array(6);
  private readonly byRoute = new Map<string, Float64Array>();
  private readonly latencyCounts = new Float64Array(LATENCY_BUCKETS.length + 1);
  private latencySum = 0;
  upstreamErrors = 0;
  retries = 0;
  private static readonly MAX_ROUTES = 10_000;

  recordRequest(status: number, route: string | undefined, latencyMs: number): void {
    const cls = status >= 100 && status < 600 ? ((status / 100) | 0) - 1 : 5;
    this.byClass[cls]!++;
    if (route !== undefined) {
      let counts = this.byRoute.get(route);
      if (counts === undefined && this.byRoute.size < RouterMetrics.MAX_ROUTES) {
        counts = new Float64Array(6);
        this.byRoute.set(route, counts);
      }
      if (counts) counts[cls]!++;
    }
    const s = latencyMs / 1000;
    this.latencySum += s;
    let i = 0;
    while (i < LATENCY_BUCKETS.length && s > LATENCY_BUCKETS[i]!) i++;
    this.latencyCounts[i]!++;
  }

  /** Forgets a route's counters when it leaves the table. */
  forgetRoute(route: string): void {
    this.byRoute.delete(route);
  }

  total(): number {
    let n = 0;
    for (const v of this.byClass) n += v;
    return n;
  }

  render(src: MetricsSources): string {
    const out: string[] = [];
    out.push("# HELP skiff_router_requests_total Requests served, by status class.", "# TYPE skiff_router_requests_total counter");
    CLASSES.forEach((c, i) => out.push(`skiff_router_requests_total{class="${c}"} ${this.byClass[i]}`));
    out.push("# HELP skiff_router_route_requests_total Requests served per route, by status class.", "# TYPE skiff_router_route_requests_total counter");
    for (const [route, counts] of this.byRoute)
      CLASSES.forEach((c, i) => counts[i] && out.push(`skiff_router_route_requests_total{route="${escapeLabel(route)}",class="${c}"} ${counts[i]}`));
    out.push("# HELP skiff_router_request_duration_seconds Time from request to response end.", "# TYPE skiff_router_request_duration_seconds histogram");
    let cumulative = 0;
    LATENCY_BUCKETS.forEach((b, i) => {
      cumulative += this.latencyCounts[i]!;
      out.push(`skiff_router_request_duration_seconds_bucket{le="${b}"} ${cumulative}`);
    });
    cumulative += this.latencyCounts[LATENCY_BUCKETS.length]!;
    out.push(`skiff_router_request_duration_seconds_bucket{le="+Inf"} ${cumulative}`);
    out.push(`skiff_router_request_duration_seconds_sum ${this.latencySum}`, `skiff_router_request_duration_seconds_count ${cumulative}`);
    out.push("# TYPE skiff_router_upstream_errors_total counter", `skiff_router_upstream_errors_total ${this.upstreamErrors}`);
    out.push("# TYPE skiff_router_retries_total counter", `skiff_router_retries_total ${this.retries}`);
    if (src.accessLogDropped)
      out.push(
        "# HELP skiff_router_access_log_dropped_total Access log lines dropped because the writer could not keep up.",
        "# TYPE skiff_router_access_log_dropped_total counter",
        `skiff_router_access_log_dropped_total ${src.accessLogDropped()}`,
      );
    out.push("# TYPE skiff_router_routes gauge", `skiff_router_routes ${src.routes()}`);
    out.push("# TYPE skiff_router_endpoints gauge", `skiff_router_endpoints ${src.endpoints()}`);
    out.push("# TYPE skiff_router_active_requests gauge", `skiff_router_active_requests ${src.activeRequests()}`);
    const lag = src.loopDelay?.();
    if (lag) {
      out.push("# HELP skiff_router_event_loop_delay_seconds Event-loop delay since the last scrape.", "# TYPE skiff_router_event_loop_delay_seconds gauge");
      out.push(`skiff_router_event_loop_delay_seconds{quantile="0.5"} ${lag.p50 / 1000}`, `skiff_router_event_loop_delay_seconds{quantile="0.99"} ${lag.p99 / 1000}`, `skiff_router_event_loop_delay_seconds{quantile="1"} ${lag.max / 1000}`);
    }
    const bus = src.bus();
    out.push("# HELP skiff_router_bus_messages_total Bus messages by subject and outcome.", "# TYPE skiff_router_bus_messages_total counter");
    const applyErrors = src.routeApplyErrors?.() ?? {};
    for (const [outcome, counts] of [["accepted", bus.accepted], ["rejected", bus.rejected], ["handler_error", bus.handlerErrors], ["apply_error", applyErrors]] as const)
      for (const [subject, n] of Object.entries(counts)) out.push(`skiff_router_bus_messages_total{subject="${escapeLabel(subject)}",outcome="${outcome}"} ${n}`);
    return out.join("\n") + "\n";
  }
}

function escapeLabel(s: string): string {
  return s.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}
