// What the main thread and the proxy workers say to each other over their message ports: the
// contract of router/src/workers, in one file that imports nothing but types.

import type { MetricsSnapshot } from "../status/router-metrics.ts";

/** A worker's counters and gauges, posted when the main thread renders /metrics (and when it ends). */
export interface WorkerStats {
  metrics: MetricsSnapshot;
  /** requests in flight */
  active: number;
  accessLogDropped: number;
  /** event-loop delay since the last report, ms */
  loopDelay: { p50: number; p99: number; max: number };
  /** reads of the route table that met a change and were made again */
  tableRetries: number;
  /** lookups that trapped on a table read mid-change (then made again) */
  matcherTraps: number;
}

export type ToWorker =
  | { type: "stats"; id: number }
  /** routes that left the table: their per-route series go */
  | { type: "forget-routes"; keys: string[] }
  /** the drain's end: close the listen socket, keep serving the connections open */
  | { type: "stop-accepting" }
  | { type: "stop"; graceful: boolean }
  /** tests only (SKIFF_ROUTER_FAULT_INJECTION): throw from the event loop */
  | { type: "crash-for-test" };

export type ToMain =
  | { type: "listening"; port: number }
  | { type: "failed"; error: string }
  | { type: "stats"; id: number; stats: WorkerStats }
  | { type: "crashed"; error: string; stats: WorkerStats }
  | { type: "stopped"; stats: WorkerStats };
