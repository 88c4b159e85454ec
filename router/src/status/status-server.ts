// The status port: /health (503 while draining, so load balancers stop sending), /metrics
// (Prometheus text) and /routes (the table, behind basic auth). A uWS app of its own, never on the
// proxy's port.

import { timingSafeEqual } from "node:crypto";
import type { TemplatedApp } from "uWebSockets.js";

export interface StatusSources {
  draining: () => boolean;
  metrics: () => string;
  routes: () => unknown;
  user: string;
  pass: string;
}

export function mountStatusRoutes(app: TemplatedApp, src: StatusSources): TemplatedApp {
  const expected = Buffer.from(`Basic ${Buffer.from(`${src.user}:${src.pass}`).toString("base64")}`);
  return app
    .get("/health", (res) => {
      if (src.draining()) res.writeStatus("503 Service Unavailable").end("draining\n");
      else res.end("ok\n");
    })
    .get("/metrics", (res) => {
      res.writeHeader("Content-Type", "text/plain; version=0.0.4").end(src.metrics());
    })
    .get("/routes", (res, req) => {
      const given = Buffer.from(req.getHeader("authorization"));
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        res.writeStatus("401 Unauthorized").writeHeader("WWW-Authenticate", 'Basic realm="skiff-router"').end("401 Unauthorized: give the status credentials.\n");
        return;
      }
      res.writeHeader("Content-Type", "application/json").end(JSON.stringify(src.routes()));
    })
    .any("/*", (res) => {
      res.writeStatus("404 Not Found").end("404 Not Found: try /health, /metrics or /routes.\n");
    });
}
