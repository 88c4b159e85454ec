// The router on every core (issue 16): N proxy worker threads on one port, one route table in shared
// memory written by the main thread. Real processes: the bundled router under Node, a real
// nats-server, raw TCP backends. A connection stays with the worker that accepted it, so a
// connection's worker is found once (the per-worker request counter in /metrics that moved) and the
// tests then know which worker answers each request.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import type { Server as NetServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Subjects } from "../../bus/index.ts";
import { eventually } from "../support/ports.ts";
import { keepAliveClient, type KeepAliveClient } from "./keep-alive-client.ts";
import { harnessForFile } from "./file-harness.ts";
import { metricsText, rawBackend, root, startRouter, waitForStatus, type RunningRouter } from "./router-harness.ts";

const servers: NetServer[] = [];
const h = harnessForFile(servers);

/** Requests served by each worker slot, from /metrics. */
async function perWorker(r: RunningRouter): Promise<number[]> {
  const out: number[] = [];
  for (const m of (await metricsText(r)).matchAll(/skiff_router_worker_requests_total\{worker="(\d+)"\} (\d+)/g)) out[Number(m[1])] = Number(m[2]);
  return out;
}

/** Opens `n` connections and finds each one's worker (one request each, and the counter that moved). */
async function connectionsByWorker(r: RunningRouter, host: string, n: number): Promise<Map<number, KeepAliveClient[]>> {
  const byWorker = new Map<number, KeepAliveClient[]>();
  let before = await perWorker(r);
  for (let i = 0; i < n; i++) {
    const c = keepAliveClient(r.port);
    expect(await c.get(host)).toStartWith("HTTP/1.1 200");
    const after = await perWorker(r);
    const slot = after.findIndex((v, k) => v !== (before[k] ?? 0));
    expect(slot).toBeGreaterThanOrEqual(0);
    byWorker.set(slot, [...(byWorker.get(slot) ?? []), c]);
    before = after;
  }
  return byWorker;
}

async function route(host: string, answer: (socket: Socket) => void): Promise<number> {
  const b = await rawBackend(servers, answer);
  await h.register({ port: b.port, uris: [host] });
  return b.port;
}
const ok = (s: Socket) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");

describe("N workers on one port (issue 16)", () => {
  test("every worker serves a route registered over NATS, and every worker honours its unregister", async () => {
    const r = await startRouter(h.bundle, h.nats, { SKIFF_ROUTER_WORKERS: "3" });
    try {
      expect(r.process.output()).toContain("workers=3");
      const port = await route("everywhere.skiff.localhost", ok);
      await waitForStatus(r.url, "everywhere.skiff.localhost", 200);
      // Fresh connections: the kernel spreads them over the three listen sockets (SO_REUSEPORT).
      const before = await perWorker(r);
      for (let i = 0; i < 60; i++) {
        const res = await fetch(r.url, { headers: { host: "everywhere.skiff.localhost", connection: "close" } });
        expect(res.status).toBe(200);
        expect(await res.text()).toBe("ok");
      }
      const served = await perWorker(r);
      expect(served).toHaveLength(3);
      for (let slot = 0; slot < 3; slot++) expect(served[slot]! - (before[slot] ?? 0)).toBeGreaterThan(0);

      h.bus.publish(Subjects.routerUnregister, "router.unregister", { host: "127.0.0.1", port, uris: ["everywhere.skiff.localhost"] });
      await waitForStatus(r.url, "everywhere.skiff.localhost", 404);
      for (let i = 0; i < 60; i++) {
        const res = await fetch(r.url, { headers: { host: "everywhere.skiff.localhost", connection: "close" } });
        expect(res.status).toBe(404);
        expect(res.headers.get("x-cf-routererror")).toBe("unknown_route");
      }
      const after = await perWorker(r);
      for (let slot = 0; slot < 3; slot++) expect(after[slot]! - served[slot]!).toBeGreaterThan(0); // each answered some of the 404s
    } finally {
      await r.process.stop();
    }
  }, 60_000);

  test("a worker that throws is replaced; the port keeps serving and the other worker's requests in flight finish", async () => {
    const r = await startRouter(h.bundle, h.nats, { SKIFF_ROUTER_WORKERS: "2", SKIFF_ROUTER_FAULT_INJECTION: "1" });
    try {
      await route("fast.crash.skiff.localhost", ok);
      // slow: answers 1.5 s after the request arrives
      await route("slow.crash.skiff.localhost", (s) => setTimeout(() => s.write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow"), 1500));
      await waitForStatus(r.url, "fast.crash.skiff.localhost", 200);
      await waitForStatus(r.url, "slow.crash.skiff.localhost", 200);
      let byWorker = await connectionsByWorker(r, "fast.crash.skiff.localhost", 12);
      for (let i = 0; i < 3 && byWorker.size < 2; i++) byWorker = await connectionsByWorker(r, "fast.crash.skiff.localhost", 12);
      expect(byWorker.size).toBe(2);
      const [doomed, survivors] = [byWorker.get(0)!, byWorker.get(1)!];
      const slow = survivors.map((c) => c.get("slow.crash.skiff.localhost"));
      const lost = doomed.map((c) => c.get("slow.crash.skiff.localhost"));
      await Bun.sleep(300); // the slow requests are in flight at both workers
      const crash = await fetch(`${r.statusUrl}/workers/0/crash`, { method: "POST", headers: { authorization: r.auth } });
      expect(await crash.text()).toBe("crashing\n");
      // worker 0's connections go with it; worker 1's requests in flight are answered
      for (const res of await Promise.all(lost)) expect(res).toBe("closed");
      for (const res of await Promise.all(slow)) {
        expect(res).toStartWith("HTTP/1.1 200");
        expect(res).toEndWith("slow");
      }
      expect(r.process.output()).toMatch(/proxy worker failed.*worker=0/);
      // the port serves every new connection, and worker 0 is back
      for (let i = 0; i < 40; i++) expect((await fetch(r.url, { headers: { host: "fast.crash.skiff.localhost", connection: "close" } })).status).toBe(200);
      await eventually(async () => (/skiff_router_workers 2\b/.test(await metricsText(r)) ? true : undefined), 10_000, "worker 0 to be back");
      const metrics = await metricsText(r);
      expect(metrics).toMatch(/skiff_router_worker_restarts_total 1\b/);
      expect(metrics).toMatch(/skiff_router_active_requests 0\b/);
      for (const c of [...doomed, ...survivors]) c.socket.destroy();
    } finally {
      await r.process.stop();
    }
    expect(await r.process.exited).toBe(0);
  }, 60_000);

  test("crash injection is refused without SKIFF_ROUTER_FAULT_INJECTION and without the status credentials", async () => {
    const plain = await startRouter(h.bundle, h.nats, { SKIFF_ROUTER_WORKERS: "1" });
    const injecting = await startRouter(h.bundle, h.nats, { SKIFF_ROUTER_WORKERS: "1", SKIFF_ROUTER_FAULT_INJECTION: "1" });
    try {
      expect((await fetch(`${plain.statusUrl}/workers/0/crash`, { method: "POST", headers: { authorization: plain.auth } })).status).toBe(404);
      expect((await fetch(`${injecting.statusUrl}/workers/0/crash`, { method: "POST" })).status).toBe(401);
      expect(/skiff_router_workers 1\b/.test(await metricsText(injecting))).toBe(true);
    } finally {
      await plain.process.stop();
      await injecting.process.stop();
    }
  }, 30_000);

  test("drain with N workers: every request in flight at every worker is answered, the process exits 0", async () => {
    const r = await startRouter(h.bundle, h.nats, { SKIFF_ROUTER_WORKERS: "3", SKIFF_ROUTER_DRAIN_SECONDS: "1" });
    await route("fast.drain-n.skiff.localhost", ok);
    await route("slow.drain-n.skiff.localhost", (s) => setTimeout(() => s.write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow"), 2000));
    await waitForStatus(r.url, "fast.drain-n.skiff.localhost", 200);
    await waitForStatus(r.url, "slow.drain-n.skiff.localhost", 200);
    const byWorker = await connectionsByWorker(r, "fast.drain-n.skiff.localhost", 18);
    expect(byWorker.size).toBe(3);
    const all = [...byWorker.values()].flat();
    // Requests in flight at all three workers when the drain starts, and still when the listen
    // sockets close (2 s answers, 1 s drain).
    const pending = all.map((c) => c.get("slow.drain-n.skiff.localhost"));
    await Bun.sleep(200);
    process.kill(r.process.pid, "SIGTERM");
    const answers = await Promise.all(pending);
    for (const a of answers) {
      expect(a).toStartWith("HTTP/1.1 200");
      expect(a.toLowerCase()).toContain("connection: close");
      expect(a).toEndWith("slow");
    }
    expect(await r.process.exited).toBe(0);
    await eventually(() => (all.every((c) => c.state.closed) ? true : undefined), 5000, "every client connection to close");
  }, 60_000);
});

describe("one route table in shared memory (issue 16)", () => {
  let bundle = "";
  const dir = mkdtempSync(join(tmpdir(), "skiff-table-race-"));
  beforeAll(() => {
    bundle = join(dir, "table-race.mjs");
    execFileSync(join(root, "node_modules/.bin/bun"), ["build", join(root, "tests/router/support/table-race.ts"), "--target=node", "--outfile", bundle, "--format=esm"], { stdio: "pipe" });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const race = (...args: string[]) => {
    const out = execFileSync("node", [bundle, ...args], { encoding: "utf8", timeout: 60_000, env: { ...process.env, SKIFF_MATCHER_WASM: join(root, "wasm/dist/matcher.wasm") } });
    return JSON.parse(out.trim().split("\n").at(-1)!) as { checks: number; mismatches: number; retries: number; traps: number; changes: number; examples: string[] };
  };

  test("a reader thread hammering lookups while the writer churns the table never sees a torn route (differential against the one-thread table)", () => {
    const r = race("--seconds", "3");
    expect(r.examples).toEqual([]);
    expect(r.mismatches).toBe(0);
    expect(r.checks).toBeGreaterThan(5_000);
    expect(r.changes).toBeGreaterThan(20_000);
    expect(r.retries).toBeGreaterThan(0); // reads did meet changes
  }, 90_000);

  test("the same reader without the seqlock sees torn routes (the differential test can fail)", () => {
    let r = race("--seconds", "2", "--no-seqlock");
    for (let i = 0; i < 2 && r.mismatches === 0; i++) r = race("--seconds", "3", "--no-seqlock");
    expect(r.mismatches).toBeGreaterThan(0);
  }, 90_000);
});
