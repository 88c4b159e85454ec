// The router's one entry point: reads config, builds the objects, starts them in order, and stops
// them on signals. Runs under Node (bundled by router/build.mjs); refuses to run on uWS's JS fallback.
//
// Threads (issue 16): this main thread hears the bus and writes the one route table (shared memory),
// serves the status port and supervises SKIFF_ROUTER_WORKERS proxy worker threads (default: the cores
// the process may use), each with its own uWS app on the proxy port (router/src/workers). The same
// bundle runs in every thread: a worker thread starts at the bottom of this file.
//
//   SIGTERM / SIGUSR1: drain (/health 503 for SKIFF_ROUTER_DRAIN_SECONDS), stop accepting, finish
//                      what is in flight, close the bus, exit 0.   SIGINT: stop at once.

import { isMainThread, workerData } from "node:worker_threads";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { randomUUID } from "node:crypto";
import { closeSync } from "node:fs";
import type * as UWS from "uWebSockets.js";
import { connectBus, createLogger } from "../bus/index.ts";
import { restrictUmask } from "../bus/private-state.ts";
import { readRouterConfig } from "./src/config/router-config.ts";
import { loadWasmMatcher, MatcherWasmMissingError, type MatcherShare } from "./src/matcher/wasm-matcher.ts";
import { RouteRegistry } from "./src/registry/route-registry.ts";
import { RouteSubscriber } from "./src/mbus/route-subscriber.ts";
import { RouterMetrics } from "./src/status/router-metrics.ts";
import { AccessLog } from "./src/status/access-log.ts";
import { mountStatusRoutes } from "./src/status/status-server.ts";
import { statusPassword } from "./src/status/status-password.ts";
import { TableControl } from "./src/route/table-seqlock.ts";
import { listen, ListenOptions, loadNativeUws } from "./src/uws.ts";
import { runProxyWorker, type ProxyWorkerData } from "./src/workers/proxy-worker.ts";
import { ProxyWorkers } from "./src/workers/proxy-workers.ts";

const log = createLogger("router");
/** the workers, once made: an exit with a worker's uWS sockets open aborts the process (Node's check
 * of the thread's event loop), so every way out stops them first */
let running: ProxyWorkers | undefined;

/** routes the table has room for without growing its key indexes (a stall of ~100 ms at a million): address space only until used */
const TABLE_RESERVE_ROUTES = 1 << 21;

async function main(): Promise<void> {
  restrictUmask(); // the access log and the status password are the platform's alone
  const uws = loadNativeUws();
  const config = readRouterConfig(process.env);
  const status = statusPassword(config.statusPass, config.statusPassFile);
  const routerId = randomUUID();

  // One table for every worker: the matcher's memory and the stores' columns are shared, so the
  // reference matcher (JS objects, one thread's) cannot stand in for a missing matcher.wasm.
  const matcher = await loadWasmMatcher().catch((err) => {
    throw err instanceof MatcherWasmMissingError ? new Error(`${err.message} (the worker threads share the WASM matcher's table)`) : err;
  });
  const removedRoutes = new Set<string>();
  const registry = new RouteRegistry(matcher, {
    defaultStaleThresholdMs: config.staleThresholdSeconds * 1000,
    maxConnsPerEndpoint: config.maxConnsPerEndpoint,
    reserveRoutes: TABLE_RESERVE_ROUTES,
    workerSlots: config.workers,
    onRouteRemoved: (key) => removedRoutes.add(key),
  });
  const scheme = config.tlsCert ? "https" : "http";
  const accessLogFd = config.accessLog ? await AccessLog.openFd(config.accessLog) : undefined;

  const bus = await connectBus({ servers: config.natsServers, name: `router-${routerId.slice(0, 8)}`, ...config.nats }, log);
  const subscriber = new RouteSubscriber(
    bus,
    registry,
    {
      id: routerId,
      hosts: [config.host],
      minimumRegisterIntervalSeconds: config.minimumRegisterIntervalSeconds,
      pruneThresholdSeconds: config.staleThresholdSeconds,
    },
    log.child("mbus"),
  );
  subscriber.start();

  // Pruning runs in slices of 1,000 routes with a turn of the event loop between them.
  const pruneSlice = () => {
    const { done, pruned } = registry.pruneStaleSlice(Date.now(), 1000);
    if (!done) return void setImmediate(pruneSlice);
    if (pruned > 0) log.info("pruned stale endpoints", { pruned, ...registry.stats() });
  };
  const pruneTimer = setInterval(pruneSlice, config.pruneIntervalSeconds * 1000);

  // The proxy port: bound exclusively here first, so that a port another process holds fails the start
  // loudly (and port 0 becomes a real port), then shared by the workers (SO_REUSEPORT among themselves).
  const probe = uws.App();
  const { socket: probeSocket, port } = await listen(uws, probe, config.port, ListenOptions.exclusivePort, "proxy", "SKIFF_ROUTER_PORT");
  uws.us_listen_socket_close(probeSocket);
  (probe as UWS.TemplatedApp & { close(): void }).close();

  const matcherShares: MatcherShare[] = Array.from({ length: config.workers }, () => matcher.shareWithReader());
  const table = registry.share();
  const workers = (running = new ProxyWorkers({
    count: config.workers,
    entry: new URL(import.meta.url),
    log,
    onSlotLost: (slot) => registry.resetWorkerSlot(slot),
    dataFor: (slot): ProxyWorkerData => ({
      slot,
      port,
      table,
      matcher: matcherShares[slot]!,
      limits: { maxHeaderBytes: config.maxHeaderBytes, maxBodyBytes: config.maxBodyBytes, connectTimeoutMs: config.connectTimeoutMs, responseTimeoutMs: config.responseTimeoutMs, maxAttempts: 3 },
      upstream: { maxIdle: config.maxIdlePerEndpoint, idleTimeoutMs: config.upstreamIdleTimeoutMs },
      scheme,
      trustedProxies: config.trustedProxies.entries.join(","),
      tls: config.tlsCert ? { cert: config.tlsCert, key: config.tlsKey! } : undefined,
      accessLogFd,
    }),
  }));

  // Routes that left the table: their per-route series go in every worker (in batches, and before every scrape).
  const forgetRemoved = () => {
    if (removedRoutes.size === 0) return;
    workers.broadcast({ type: "forget-routes", keys: [...removedRoutes] });
    removedRoutes.clear();
  };
  const forgetTimer = setInterval(forgetRemoved, 1000);

  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const renderMetrics = async (): Promise<string> => {
    forgetRemoved();
    const { live, retired } = await workers.stats();
    const total = new RouterMetrics();
    const requests: number[] = [];
    let active = 0;
    let dropped = 0;
    let tableRetries = 0;
    // the worst thread's event-loop delay: a request waits behind its own worker's loop
    const lag = { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 };
    loopDelay.reset();
    live.forEach((stats, slot) => {
      const slotTotal = new RouterMetrics();
      slotTotal.absorb(retired[slot]!.snapshot());
      if (stats) {
        slotTotal.absorb(stats.metrics);
        active += stats.active;
        dropped += stats.accessLogDropped;
        tableRetries += stats.tableRetries;
        lag.p50 = Math.max(lag.p50, stats.loopDelay.p50);
        lag.p99 = Math.max(lag.p99, stats.loopDelay.p99);
        lag.max = Math.max(lag.max, stats.loopDelay.max);
      }
      requests[slot] = slotTotal.total();
      total.absorb(slotTotal.snapshot());
    });
    total.forgetRoutesNotIn((key) => registry.hasRoute(key));
    return total.render({
      routes: () => registry.stats().routes,
      endpoints: () => registry.stats().endpoints,
      bus: () => bus.counters(),
      routeApplyErrors: () => subscriber.applyErrors,
      accessLogDropped: accessLogFd !== undefined ? () => dropped : undefined,
      activeRequests: () => active,
      loopDelay: () => lag,
      workers: () => ({ live: workers.live, restarts: workers.restarts, requests, tableRetries, changeDelay: subscriber.delays.take() }),
    });
  };
  const statusApp = uws.App();
  if (config.faultInjection) mountFaultInjection(statusApp, workers, `Basic ${Buffer.from(`${config.statusUser}:${status.pass}`).toString("base64")}`);
  mountStatusRoutes(statusApp, {
    draining: () => registry.controlBlock[TableControl.draining] === 1,
    metrics: renderMetrics,
    routes: () => registry.snapshot(),
    user: config.statusUser,
    pass: status.pass,
    metricsAllow: config.metricsAllow,
  });
  try {
    await workers.start();
  } catch (err) {
    await workers.stop(false); // the ones that did start: a thread with uWS sockets open must not be cut off
    throw err;
  }
  // The status port opens only once every worker listens: a load balancer takes /health's 200 to mean
  // the proxy port serves, and a router that answered it while its workers were still starting had
  // its first requests refused (HAProxy redispatched them: the cluster's drain-and-restart scenario).
  const { socket: statusSocket, port: statusPort } = await listen(uws, statusApp, config.statusPort, ListenOptions.exclusivePort, "status", "SKIFF_ROUTER_STATUS_PORT");
  // where the password is, never the password (issue 24: logs are read by more people than the status port)
  if (status.from === "env") log.info("status credentials", { user: config.statusUser, pass_from: "SKIFF_ROUTER_STATUS_PASS" });
  else log.info(status.from === "generated" ? "status credentials generated" : "status credentials", { user: config.statusUser, pass_file: status.file });
  log.info("trusted peers", {
    trusted_proxies: config.trustedProxies.size > 0 ? config.trustedProxies.entries.join(",") : "none (X-Forwarded-Proto from the connection for every client)",
    metrics_allow: config.metricsAllow.size > 0 ? config.metricsAllow.entries.join(",") : "none (the status credentials)",
  });
  log.info("ready", { port, status_port: statusPort, workers: config.workers, matcher: matcher.constructor.name, scheme });

  let stopping = false;
  const stop = async (graceful: boolean, signal: string, exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    if (graceful) {
      Atomics.store(registry.controlBlock, TableControl.draining, 1); // every worker: Connection: close
      log.info("draining", { signal, seconds: config.drainSeconds });
      await new Promise((r) => setTimeout(r, config.drainSeconds * 1000));
    }
    workers.stopAccepting();
    log.info("stopped accepting");
    // Each worker finishes what is in flight (at most 30 s), then closes the connections left (idle
    // keep-alive ones, WebSocket tunnels) with a FIN while the process still runs, and ends.
    await workers.stop(graceful);
    log.info("closed idle client connections");
    uws.us_listen_socket_close(statusSocket);
    clearInterval(pruneTimer);
    clearInterval(forgetTimer);
    subscriber.stop();
    await Promise.race([bus.close(), new Promise((r) => setTimeout(r, graceful ? 2000 : 200))]);
    if (accessLogFd !== undefined && accessLogFd !== 1) closeSync(accessLogFd);
    log.info("stopped", { signal });
    process.exit(exitCode);
  };
  process.on("uncaughtException", (err) => {
    log.error("router failed; stopping", { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    void stop(false, "uncaughtException", 1);
  });
  process.on("SIGTERM", () => void stop(true, "SIGTERM"));
  process.on("SIGUSR1", () => void stop(true, "SIGUSR1"));
  process.on("SIGINT", () => void stop(false, "SIGINT"));
}

/** SKIFF_ROUTER_FAULT_INJECTION=1 (tests only): POST /workers/<slot>/crash on the status port, with the status credentials, makes that worker throw. */
function mountFaultInjection(app: UWS.TemplatedApp, workers: ProxyWorkers, expectedAuth: string): void {
  log.warn("fault injection is on (SKIFF_ROUTER_FAULT_INJECTION): never in production");
  app.post("/workers/:slot/crash", (res, req) => {
    if (req.getHeader("authorization") !== expectedAuth) return void res.writeStatus("401 Unauthorized").end("401 Unauthorized\n");
    res.end(workers.crash(Number(req.getParameter(0))) ? "crashing\n" : "no such worker\n");
  });
}

if (isMainThread) {
  main().catch(async (err) => {
    log.error("router failed to start", { error: err instanceof Error ? err.message : String(err) });
    await running?.stop(false);
    process.exit(1);
  });
} else {
  runProxyWorker(workerData as ProxyWorkerData).catch((err) => {
    log.error("proxy worker failed to start", { error: err instanceof Error ? err.message : String(err) });
    throw err;
  });
}
