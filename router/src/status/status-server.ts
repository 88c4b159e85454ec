// The status port: /health (open: load balancers check it; 503 while draining, so they stop sending),
// /metrics (Prometheus text) and /routes (the table). /metrics names every tenant's routes, so it wants
// the same basic-auth credentials as /routes, except from the scrapers' addresses listed in
// SKIFF_ROUTER_METRICS_ALLOW (issue 24). A uWS app of its own, never on the proxy's port.

import { timingSafeEqual } from "node:crypto";
import type { HttpRequest, HttpResponse, TemplatedApp } from "uWebSockets.js";
import type { CidrList } from "../config/cidr-list.ts";

export interface StatusSources {
  draining: () => boolean;
  /** the Prometheus text (gathered from the worker threads: may take a message round trip) */
  metrics: () => string | Promise<string>;
  routes: () => unknown;
  user: string;
  pass: string;
  /** peers that read /metrics without credentials */
  metricsAllow: CidrList;
}

export function mountStatusRoutes(app: TemplatedApp, src: StatusSources): TemplatedApp {
  const expected = Buffer.from(`Basic ${Buffer.from(`${src.user}:${src.pass}`).toString("base64")}`);
  const authorized = (res: HttpResponse, req: HttpRequest): boolean => {
    const given = Buffer.from(req.getHeader("authorization"));
    if (given.length === expected.length && timingSafeEqual(given, expected)) return true;
    res.writeStatus("401 Unauthorized").writeHeader("WWW-Authenticate", 'Basic realm="skiff-router"').end("401 Unauthorized: give the status credentials.\n");
    return false;
  };
  const allowed = src.metricsAllow;
  return app
    .get("/health", (res) => {
      if (src.draining()) res.writeStatus("503 Service Unavailable").end("draining\n");
      else res.end("ok\n");
    })
    .get("/metrics", (res, req) => {
      if (!(allowed.size > 0 && allowed.containsAddress(new Uint8Array(res.getRemoteAddress()))) && !authorized(res, req)) return;
      const text = src.metrics();
      if (typeof text === "string") return void res.writeHeader("Content-Type", "text/plain; version=0.0.4").end(text);
      let aborted = false;
      res.onAborted(() => (aborted = true));
      text.then(
        (body) => aborted || res.cork(() => res.writeHeader("Content-Type", "text/plain; version=0.0.4").end(body)),
        (err) => aborted || res.cork(() => res.writeStatus("500 Internal Server Error").end(`metrics failed: ${err instanceof Error ? err.message : String(err)}\n`)),
      );
    })
    .get("/routes", (res, req) => {
      if (!authorized(res, req)) return;
      res.writeHeader("Content-Type", "application/json").end(JSON.stringify(src.routes()));
    })
    .any("/*", (res) => {
      res.writeStatus("404 Not Found").end("404 Not Found: try /health, /metrics or /routes.\n");
    });
}
