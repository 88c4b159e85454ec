// The router's one entry point: reads config, builds the objects, starts them in order, and stops
// them on signals. Runs under Node (bundled by router/build.mjs); refuses to run on uWS's JS fallback.
//
//   SIGTERM / SIGUSR1: drain (/health 503 for SKIFF_ROUTER_DRAIN_SECONDS), stop accepting, finish
//                      what is in flight, close the bus, exit 0.   SIGINT: stop at once.

import { createRequire } from "node:module";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { randomUUID } from "node:crypto";
import type * as UWS from "uWebSockets.js";
import { connectBus, createLogger } from "../bus/index.ts";
import { restrictUmask } from "../bus/private-state.ts";
import { readRouterConfig } from "./src/config/router-config.ts";
import { ReferenceMatcher } from "./src/matcher/reference-matcher.ts";
import { loadWasmMatcher, MatcherWasmMissingError } from "./src/matcher/wasm-matcher.ts";
import type { RouteMatcher } from "./src/matcher/route-matcher.ts";
import { RouteRegistry } from "./src/registry/route-registry.ts";
import { RouteSubscriber } from "./src/mbus/route-subscriber.ts";
import { ProxyContext } from "./src/proxy/proxy-context.ts";
import { createRequestHandler } from "./src/proxy/stages.ts";
import { websocketBehavior } from "./src/proxy/websocket-proxy.ts";
import { RouterMetrics } from "./src/status/router-metrics.ts";
import { AccessLog } from "./src/status/access-log.ts";
import { mountStatusRoutes } from "./src/status/status-server.ts";
import { statusPassword } from "./src/status/status-password.ts";

const log = createLogger("router");

function loadNativeUws(): typeof UWS {
  if (typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" || !process.versions.node)
    throw new Error("the router must run under Node (uWebSockets.js falls back to a slow JS implementation under Bun): node router/dist/router.mjs");
  if (process.env.UWS_USE_FALLBACK) throw new Error("UWS_USE_FALLBACK is set: refusing to run on uWebSockets.js's JS fallback");
  const uws = createRequire(import.meta.url)("uWebSockets.js") as typeof UWS & { getParts?: unknown; H3App?: unknown };
  // The JS fallback exports App but none of the native-only functions.
  if (typeof uws.App !== "function" || typeof uws.getParts !== "function" || typeof uws.us_socket_local_port !== "function")
    throw new Error(`uWebSockets.js fell back to its JS implementation (no native binary for Node ${process.version} ABI ${process.versions.modules}): refusing to start`);
  return uws;
}

async function loadMatcher(): Promise<RouteMatcher> {
  try {
    return await loadWasmMatcher();
  } catch (err) {
    if (!(err instanceof MatcherWasmMissingError)) throw err;
    log.warn("WASM route matcher missing: falling back to the TypeScript reference matcher", { error: err.message });
    return new ReferenceMatcher();
  }
}

/** uWS's LIBUS_LISTEN_EXCLUSIVE_PORT: no SO_REUSEPORT, so a second process on the port fails instead of
 * silently taking a share of its connections. The .d.ts lacks the (host, port, options, cb) overload. */
const LISTEN_EXCLUSIVE_PORT = 1;
/** routes the table has room for without growing (a stall of ~100 ms at a million): address space only until used */
const TABLE_RESERVE_ROUTES = 1 << 21;
type ListenWithOptions = (host: string, port: number, options: number, cb: (socket: UWS.us_listen_socket | false) => void) => unknown;

class ListenError extends Error {
  override name = "ListenError";
}

/** Listens on `port` (0: any free port) and resolves with the socket and the port actually bound. */
function listen(uws: typeof UWS, app: UWS.TemplatedApp, port: number, what: string, envName: string): Promise<{ socket: UWS.us_listen_socket; port: number }> {
  return new Promise((resolve, reject) =>
    (app.listen as unknown as ListenWithOptions).call(app, "0.0.0.0", port, LISTEN_EXCLUSIVE_PORT, (socket) => {
      if (socket) resolve({ socket, port: uws.us_socket_local_port(socket as unknown as UWS.us_socket) });
      else reject(new ListenError(`cannot listen on port ${port} (${what}): it is in use by another process; stop that process or set ${envName} to a free port (0 picks one)`));
    }),
  );
}

async function main(): Promise<void> {
  restrictUmask(); // the access log and the status password are the platform's alone
  const uws = loadNativeUws();
  const config = readRouterConfig(process.env);
  const status = statusPassword(config.statusPass, config.statusPassFile);
  const routerId = randomUUID();

  const matcher = await loadMatcher();
  const metrics = new RouterMetrics();
  let ctx: ProxyContext | undefined;
  const registry = new RouteRegistry(matcher, {
    defaultStaleThresholdMs: config.staleThresholdSeconds * 1000,
    maxConnsPerEndpoint: config.maxConnsPerEndpoint,
    reserveRoutes: TABLE_RESERVE_ROUTES,
    onEndpointRemoved: (e) => ctx?.endpointRemoved(e),
    onRouteRemoved: (key) => metrics.forgetRoute(key),
  });
  const scheme = config.tlsCert ? "https" : "http";
  const accessLog = config.accessLog ? await AccessLog.open(config.accessLog, scheme) : undefined;
  ctx = new ProxyContext(
    registry,
    {
      maxHeaderBytes: config.maxHeaderBytes,
      maxBodyBytes: config.maxBodyBytes,
      connectTimeoutMs: config.connectTimeoutMs,
      responseTimeoutMs: config.responseTimeoutMs,
      maxAttempts: 3,
    },
    metrics,
    accessLog,
    { maxIdle: config.maxIdlePerEndpoint, idleTimeoutMs: config.upstreamIdleTimeoutMs },
    scheme,
    config.trustedProxies,
  );
  const proxyContext = ctx;

  const bus = await connectBus({ servers: config.natsServers, name: `router-${routerId.slice(0, 8)}`, user: config.natsUser, pass: config.natsPass, tls: config.natsTls }, log);
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
  const sweepTimer = setInterval(() => proxyContext.sweep(Date.now()), 250);

  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const proxyApp = config.tlsCert ? uws.SSLApp({ cert_file_name: config.tlsCert, key_file_name: config.tlsKey! }) : uws.App();
  proxyApp.ws("/*", websocketBehavior(proxyContext));
  proxyApp.any("/*", createRequestHandler(proxyContext));
  const statusApp = mountStatusRoutes(uws.App(), {
    draining: () => proxyContext.draining,
    metrics: () =>
      metrics.render({
        routes: () => registry.stats().routes,
        endpoints: () => registry.stats().endpoints,
        bus: () => bus.counters(),
        routeApplyErrors: () => subscriber.applyErrors,
        accessLogDropped: accessLog ? () => accessLog.dropped : undefined,
        activeRequests: () => proxyContext.activeCount,
        loopDelay: () => {
          const ms = { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 };
          loopDelay.reset();
          return ms;
        },
      }),
    routes: () => registry.snapshot(),
    user: config.statusUser,
    pass: status.pass,
    metricsAllow: config.metricsAllow,
  });
  const { socket: proxySocket, port } = await listen(uws, proxyApp, config.port, "proxy", "SKIFF_ROUTER_PORT");
  const { socket: statusSocket, port: statusPort } = await listen(uws, statusApp, config.statusPort, "status", "SKIFF_ROUTER_STATUS_PORT");
  // where the password is, never the password (issue 24: logs are read by more people than the status port)
  if (status.from === "env") log.info("status credentials", { user: config.statusUser, pass_from: "SKIFF_ROUTER_STATUS_PASS" });
  else log.info(status.from === "generated" ? "status credentials generated" : "status credentials", { user: config.statusUser, pass_file: status.file });
  log.info("trusted peers", {
    trusted_proxies: config.trustedProxies.size > 0 ? config.trustedProxies.entries.join(",") : "none (X-Forwarded-Proto from the connection for every client)",
    metrics_allow: config.metricsAllow.size > 0 ? config.metricsAllow.entries.join(",") : "none (the status credentials)",
  });
  log.info("ready", { port, status_port: statusPort, matcher: matcher.constructor.name, scheme });

  let stopping = false;
  const stop = async (graceful: boolean, signal: string) => {
    if (stopping) return;
    stopping = true;
    if (graceful) {
      proxyContext.draining = true;
      log.info("draining", { signal, seconds: config.drainSeconds });
      await new Promise((r) => setTimeout(r, config.drainSeconds * 1000));
    }
    uws.us_listen_socket_close(proxySocket);
    log.info("stopped accepting", { inFlight: proxyContext.activeCount });
    if (graceful) {
      const deadline = Date.now() + 30_000;
      while (proxyContext.activeCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    }
    // What is left are keep-alive connections with nothing in flight (and WebSocket tunnels): closed
    // here with a FIN while the process still runs, so a client never finds its connection reset by
    // the exit. uWS 20.30 has no per-connection hook to close only idle ones earlier; until now they
    // were still served, with Connection: close. App#close is missing from 20.30's .d.ts.
    (proxyApp as UWS.TemplatedApp & { close(): void }).close();
    log.info("closed idle client connections");
    uws.us_listen_socket_close(statusSocket);
    clearInterval(pruneTimer);
    clearInterval(sweepTimer);
    subscriber.stop();
    await Promise.race([bus.close(), new Promise((r) => setTimeout(r, graceful ? 2000 : 200))]);
    await accessLog?.close();
    log.info("stopped", { signal });
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop(true, "SIGTERM"));
  process.on("SIGUSR1", () => void stop(true, "SIGUSR1"));
  process.on("SIGINT", () => void stop(false, "SIGINT"));
}

main().catch((err) => {
  log.error("router failed to start", { error: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
