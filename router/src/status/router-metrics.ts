// The router's counters, rendered as Prometheus text on the status port. Recording a request is a
// few array increments and one map lookup; rendering happens only when /metrics is scraped.

import type { BusCounters } from "../../../bus/index.ts";

/** Upper bounds of the latency histogram, in seconds. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

/** RouterMetrics's counters by field name (see RouterMetrics.snapshot). */
export type MetricsSnapshot = Record<string, number | Float64Array | Map<string, number | Float64Array>>;

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
  /** the proxy worker threads (issue 16) */
  workers?: () => WorkerGauges;
}

export interface WorkerGauges {
  /** worker threads running now */
  live: number;
  /** workers started again after one died */
  restarts: number;
  /** requests served by each slot's workers */
  requests: readonly number[];
  /** table reads that met a change and were read again, over every worker */
  tableRetries: number;
  /** route changes applied: how long each waited from its arrival (ms) */
  changeDelay?: { p50: number; p99: number; max: number; count: number };
}

export class RouterMetrics {
  private readonly byClass = new Float64Array(6);
  private readonly byRoute = new Map<string, Float64Array>();
  private readonly latencyCounts = new Float64Array(LATENCY_BUCKETS.length + 1);
  private latencySum = 0;
  upstreamErrors = 0;
  retries = 0;
  /** stage 3's refusals (each answered, then the connection closed), by X-Cf-Routererror code */
  private readonly refusals = new Map<string, number>();
  /** requests uWS handed over and then closed the connection on itself, before any answer, by cause */
  private readonly engineCloses = new Map<string, number>();
  /** requests whose connection closed before the router answered (status 499 in the access log) */
  private closedBeforeAnswer = 0;
  private static readonly MAX_ROUTES = 10_000;

  recordRequest(status: number, route: string | undefined, latencyMs: number): void {
    const cls = status >= 100 && status < 600 ? ((status / 100) | 0) - 1 : 5;
    this.byClass[cls]!++;
    if (status === 499) this.closedBeforeAnswer++;
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

  countRefusal(code: string): void {
    this.refusals.set(code, (this.refusals.get(code) ?? 0) + 1);
  }

  countEngineClose(cause: string): void {
    this.engineCloses.set(cause, (this.engineCloses.get(cause) ?? 0) + 1);
  }

  /** Forgets a route's counters when it leaves the table. */
  forgetRoute(route: string): void {
    this.byRoute.delete(route);
  }

  /** Forgets the per-route series of every route `inTable` says is gone (the main thread, over the sum). */
  forgetRoutesNotIn(inTable: (route: string) => boolean): void {
    for (const route of [...this.byRoute.keys()]) if (!inTable(route)) this.byRoute.delete(route);
  }

  /**
   * Every counter, as a structured-cloneable copy (what a worker thread posts to the main thread, which
   * adds every worker's together with `absorb` and renders the sum). Generic over the fields: a number
   * is summed, a Float64Array element by element, a Map by key (of numbers or Float64Arrays), so a
   * counter added to this class is summed over the workers without more code.
   */
  snapshot(): MetricsSnapshot {
    const out: MetricsSnapshot = {};
    for (const [name, value] of Object.entries(this)) {
      if (typeof value === "number") out[name] = value;
      else if (value instanceof Float64Array) out[name] = value.slice();
      else if (value instanceof Map) out[name] = new Map([...(value as Map<string, number | Float64Array>)].map(([k, v]) => [k, v instanceof Float64Array ? v.slice() : v]));
    }
    return out;
  }

  /** Adds a snapshot's counters into this one's (per-route series up to the usual cap). */
  absorb(snapshot: MetricsSnapshot): void {
    const self = this as unknown as Record<string, unknown>;
    for (const [name, value] of Object.entries(snapshot)) {
      const mine = self[name];
      if (typeof value === "number" && typeof mine === "number") self[name] = mine + value;
      else if (value instanceof Float64Array && mine instanceof Float64Array) for (let i = 0; i < mine.length; i++) mine[i]! += value[i] ?? 0;
      else if (value instanceof Map && mine instanceof Map)
        for (const [k, v] of value as Map<string, number | Float64Array>) {
          const have = mine.get(k) as number | Float64Array | undefined;
          if (typeof v === "number") mine.set(k, ((have as number | undefined) ?? 0) + v);
          else if (have instanceof Float64Array) for (let i = 0; i < have.length; i++) have[i]! += v[i] ?? 0;
          else if (mine !== this.byRoute || mine.size < RouterMetrics.MAX_ROUTES) mine.set(k, v.slice());
        }
    }
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
    out.push(
      "# HELP skiff_router_refused_requests_total Requests refused before routing (answered with the status, then the connection closed), by X-Cf-Routererror code.",
      "# TYPE skiff_router_refused_requests_total counter",
    );
    for (const [code, n] of this.refusals) out.push(`skiff_router_refused_requests_total{cause="${escapeLabel(code)}"} ${n}`);
    out.push(
      "# HELP skiff_router_engine_closed_total Requests uWebSockets.js handed over and then closed the connection on by itself, before any answer could be sent, by cause (docs/load-balancers.md).",
      "# TYPE skiff_router_engine_closed_total counter",
    );
    for (const [cause, n] of this.engineCloses) out.push(`skiff_router_engine_closed_total{cause="${escapeLabel(cause)}"} ${n}`);
    out.push(
      "# HELP skiff_router_closed_before_answer_total Requests whose connection closed before the router answered: the client went away, or uWebSockets.js closed it (a request pipelined behind this one, a malformed chunked body); uWS 20.30 does not tell which.",
      "# TYPE skiff_router_closed_before_answer_total counter",
      `skiff_router_closed_before_answer_total ${this.closedBeforeAnswer}`,
    );
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
    const workers = src.workers?.();
    if (workers) {
      out.push("# HELP skiff_router_workers Proxy worker threads serving the router's port.", "# TYPE skiff_router_workers gauge", `skiff_router_workers ${workers.live}`);
      out.push("# HELP skiff_router_worker_restarts_total Proxy workers started again after one died.", "# TYPE skiff_router_worker_restarts_total counter", `skiff_router_worker_restarts_total ${workers.restarts}`);
      out.push("# HELP skiff_router_worker_requests_total Requests served, by worker slot.", "# TYPE skiff_router_worker_requests_total counter");
      workers.requests.forEach((n, i) => out.push(`skiff_router_worker_requests_total{worker="${i}"} ${n}`));
      out.push("# HELP skiff_router_table_read_retries_total Route-table reads that met a change and were read again.", "# TYPE skiff_router_table_read_retries_total counter", `skiff_router_table_read_retries_total ${workers.tableRetries}`);
      const d = workers.changeDelay;
      if (d) {
        out.push("# HELP skiff_router_route_change_delay_seconds From a route change's arrival to every worker seeing it, since the last scrape.", "# TYPE skiff_router_route_change_delay_seconds summary");
        out.push(`skiff_router_route_change_delay_seconds{quantile="0.5"} ${d.p50 / 1000}`, `skiff_router_route_change_delay_seconds{quantile="0.99"} ${d.p99 / 1000}`, `skiff_router_route_change_delay_seconds{quantile="1"} ${d.max / 1000}`, `skiff_router_route_change_delay_seconds_count ${d.count}`);
      }
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
