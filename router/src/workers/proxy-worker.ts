// One proxy worker thread (issue 16): its own uWS app on the router's port (SO_REUSEPORT: the kernel
// spreads new connections over the workers), reading the one shared route table through its own
// RouteTableReader and WasmMatcherReader. Built and started from the main thread by ProxyWorkers,
// which it answers over its port: listening, metrics snapshots, stopped.
//
// A worker that throws closes its app and listen socket before its thread ends: uWS 20.30 does not
// clean up after a thread on its own, and Node aborts the whole process when a worker thread ends
// with uWS's sockets still open. The main thread then starts another worker in its slot.

import { parentPort } from "node:worker_threads";
import { monitorEventLoopDelay } from "node:perf_hooks";
import type * as UWS from "uWebSockets.js";
import { CidrList } from "../config/cidr-list.ts";
import { WasmMatcherReader, type MatcherShare } from "../matcher/wasm-matcher.ts";
import { ProxyContext, type ProxyLimits } from "../proxy/proxy-context.ts";
import { createRequestHandler } from "../proxy/stages.ts";
import type { UpstreamPoolOptions } from "../proxy/upstream-pool.ts";
import { websocketBehavior } from "../proxy/websocket-proxy.ts";
import { RouteTableReader, type RouteTableShare } from "../route/table-reader.ts";
import { AccessLog } from "../status/access-log.ts";
import { RouterMetrics } from "../status/router-metrics.ts";
import { listen, ListenOptions, loadNativeUws } from "../uws.ts";
import type { ToMain, ToWorker, WorkerStats } from "./worker-messages.ts";

/** Everything a worker is started with (postMessage-able: shared buffers, a module, plain data). */
export interface ProxyWorkerData {
  slot: number;
  /** the port every worker listens on (the main thread resolved a 0 and checked it is free) */
  port: number;
  table: RouteTableShare;
  matcher: MatcherShare;
  limits: ProxyLimits;
  upstream: UpstreamPoolOptions;
  scheme: string;
  /** SKIFF_ROUTER_TRUSTED_PROXIES, as given */
  trustedProxies: string;
  tls: { cert: string; key: string } | undefined;
  /** the access log's file descriptor (opened once by the main thread, O_APPEND), if logging */
  accessLogFd: number | undefined;
}

/** How long a graceful stop waits for requests in flight. */
const FINISH_IN_FLIGHT_MS = 30_000;

export async function runProxyWorker(data: ProxyWorkerData): Promise<void> {
  const port = parentPort!;
  const send = (m: ToMain) => port.postMessage(m);
  const uws = loadNativeUws();
  const matcher = WasmMatcherReader.attach(data.matcher);
  const table = new RouteTableReader(data.table, matcher, data.slot);
  const metrics = new RouterMetrics();
  const accessLog = data.accessLogFd === undefined ? undefined : AccessLog.forFd(data.accessLogFd, data.scheme);
  const ctx = new ProxyContext({
    table,
    limits: data.limits,
    metrics,
    accessLog,
    upstream: data.upstream,
    scheme: data.scheme,
    trustedProxies: CidrList.parse(data.trustedProxies, "SKIFF_ROUTER_TRUSTED_PROXIES"),
    control: data.table.control,
  });
  const isCurrent = (row: number, gen: number) => table.endpointCurrent(row, gen);
  const sweepTimer = setInterval(() => ctx.sweep(Date.now(), isCurrent), 250);
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const app = data.tls ? uws.SSLApp({ cert_file_name: data.tls.cert, key_file_name: data.tls.key }) : uws.App();
  app.ws("/*", websocketBehavior(ctx));
  app.any("/*", createRequestHandler(ctx));

  let listenSocket: UWS.us_listen_socket | undefined;
  let closed = false;
  const stats = (): WorkerStats => {
    const lag = { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 };
    loopDelay.reset();
    return { metrics: metrics.snapshot(), active: ctx.activeCount, accessLogDropped: accessLog?.dropped ?? 0, loopDelay: lag, tableRetries: table.retries, matcherTraps: matcher.traps };
  };
  /** Closes everything the thread holds, so that it can end (see the file comment). */
  const closeAll = () => {
    if (closed) return;
    closed = true;
    if (listenSocket) uws.us_listen_socket_close(listenSocket);
    listenSocket = undefined;
    (app as UWS.TemplatedApp & { close(): void }).close(); // App#close is missing from 20.30's .d.ts
    ctx.closeUpstreams();
    clearInterval(sweepTimer);
    loopDelay.disable();
  };

  process.on("uncaughtException", (err) => {
    // The thread's state can no longer be trusted: report, close, end. Its slot gets a new worker.
    try {
      send({ type: "crashed", error: err instanceof Error ? (err.stack ?? err.message) : String(err), stats: stats() });
    } finally {
      closeAll();
      port.close();
    }
  });

  port.on("message", (m: ToWorker) => {
    switch (m.type) {
      case "stats":
        send({ type: "stats", id: m.id, stats: stats() });
        return;
      case "forget-routes":
        for (const key of m.keys) metrics.forgetRoute(key);
        return;
      case "stop-accepting":
        if (listenSocket) uws.us_listen_socket_close(listenSocket);
        listenSocket = undefined;
        return;
      case "stop":
        void stop(m.graceful);
        return;
      case "crash-for-test":
        // SKIFF_ROUTER_FAULT_INJECTION only: the main thread refuses this message otherwise
        setImmediate(() => {
          throw new Error("worker crash requested (SKIFF_ROUTER_FAULT_INJECTION)");
        });
        return;
    }
  });

  const stop = async (graceful: boolean) => {
    if (listenSocket) uws.us_listen_socket_close(listenSocket);
    listenSocket = undefined;
    if (graceful) {
      const deadline = Date.now() + FINISH_IN_FLIGHT_MS;
      while (ctx.activeCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    }
    // What is left are keep-alive connections with nothing in flight (and WebSocket tunnels): closed
    // with a FIN while the process still runs, so a client never finds its connection reset by the exit.
    closeAll();
    await accessLog?.close();
    send({ type: "stopped", stats: stats() });
    port.close();
  };

  try {
    const bound = await listen(uws, app, data.port, ListenOptions.sharedPort, "proxy", "SKIFF_ROUTER_PORT");
    listenSocket = bound.socket;
    send({ type: "listening", port: bound.port });
  } catch (err) {
    closeAll();
    send({ type: "failed", error: err instanceof Error ? err.message : String(err) });
    port.close();
  }
}
