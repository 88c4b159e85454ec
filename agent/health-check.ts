// Health checks run before an instance turns RUNNING: port (TCP connect, the default), http (a 2xx/3xx
// on the endpoint) and process (alive is enough). Polls quickly at first so a fast app is routable fast.

import { connect } from "node:net";
import type { HealthCheck } from "../bus/index.ts";

export type HealthResult = "healthy" | "timeout" | "exited";

function tcpOpen(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
  });
}

async function httpOk(host: string, port: number, endpoint: string, timeoutMs: number): Promise<boolean> {
  try {
    const path = endpoint.startsWith("/") ? endpoint : `/${endpoint}`;
    const res = await fetch(`http://${host}:${port}${path}`, { signal: AbortSignal.timeout(timeoutMs), redirect: "manual" });
    await res.arrayBuffer().catch(() => {});
    return res.status >= 200 && res.status < 400;
  } catch {
    return false;
  }
}

/**
 * Waits until the check passes, the process exits (`exited()` true) or the timeout passes.
 * `cancelled()` stops waiting early (the instance is being stopped) and reports "exited".
 */
export async function waitHealthy(
  check: HealthCheck,
  target: { host: string; port: number },
  exited: () => boolean,
): Promise<HealthResult> {
  const deadline = Date.now() + check.timeout * 1000;
  if (check.type === "process") return exited() ? "exited" : "healthy";
  let interval = 3;
  while (Date.now() < deadline) {
    if (exited()) return "exited";
    const ok =
      check.type === "http"
        ? await httpOk(target.host, target.port, check.endpoint ?? "/", 1000)
        : await tcpOpen(target.host, target.port, 1000);
    if (ok) return exited() ? "exited" : "healthy";
    await Bun.sleep(Math.min(interval, Math.max(0, deadline - Date.now())));
    interval = Math.min(100, Math.ceil(interval * 1.5));
  }
  return "timeout";
}
