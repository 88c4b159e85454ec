// Drain without dropping traffic (issue 5): while the router drains, every response tells keep-alive
// clients to reconnect (Connection: close), so the load balancer moves them to another router; when
// the listen socket closes, the keep-alive connections left idle are closed cleanly (FIN) by the router
// itself, not reset when the process exits.

import { expect, test } from "bun:test";
import type { Server as NetServer } from "node:net";
import { eventually } from "../support/ports.ts";
import { keepAliveClient } from "./keep-alive-client.ts";
import { harnessForFile } from "./file-harness.ts";
import { rawBackend, startRouter, waitForStatus } from "./router-harness.ts";

const servers: NetServer[] = [];
const h = harnessForFile(servers);

/** A keep-alive client connection that records what arrives and how it ends; 5 s for each response. */
const client = (port: number) => keepAliveClient(port, 5000);

async function okRoute(host: string): Promise<void> {
  const b = await rawBackend(servers, (s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
  await h.register({ port: b.port, uris: [host] });
}

test("during the drain window responses carry Connection: close, proxied and the router's own errors alike (issue 5)", async () => {
  const r = await startRouter(h.bundle, h.nats, { SKIFF_ROUTER_DRAIN_SECONDS: "3" });
  await okRoute("drain-close.skiff.localhost");
  await waitForStatus(r.url, "drain-close.skiff.localhost", 200);
  const before = client(r.port);
  const first = await before.get("drain-close.skiff.localhost");
  expect(first).toStartWith("HTTP/1.1 200");
  expect(first.toLowerCase()).not.toContain("connection: close");

  process.kill(r.process.pid, "SIGTERM");
  await eventually(async () => ((await fetch(`${r.statusUrl}/health`)).status === 503 ? true : undefined), 3000, "/health to answer 503");
  // the keep-alive connection opened before the drain: its next response says to reconnect
  const during = await before.get("drain-close.skiff.localhost");
  expect(during).toStartWith("HTTP/1.1 200");
  expect(during.toLowerCase()).toContain("connection: close");
  expect(during).toEndWith("ok");
  // a new connection, an unknown route: the router's own 404 says so too
  const fresh = client(r.port);
  const notFound = await fresh.get("nobody.skiff.localhost");
  expect(notFound).toStartWith("HTTP/1.1 404");
  expect(notFound.toLowerCase()).toContain("connection: close");
  before.socket.destroy();
  fresh.socket.destroy();
  expect(await r.process.exited).toBe(0);
}, 20_000);

test("when the listen socket closes, idle keep-alive connections are closed cleanly before the process exits (issue 5)", async () => {
  const r = await startRouter(h.bundle, h.nats, { SKIFF_ROUTER_DRAIN_SECONDS: "1" });
  await okRoute("drain-idle.skiff.localhost");
  await waitForStatus(r.url, "drain-idle.skiff.localhost", 200);
  const idle = client(r.port);
  expect(await idle.get("drain-idle.skiff.localhost")).toStartWith("HTTP/1.1 200");
  process.kill(r.process.pid, "SIGTERM");
  await r.process.waitForLine(/stopped accepting/, 5000);
  await eventually(() => (idle.state.closed ? true : undefined), 5000, "the idle connection to close");
  expect(idle.state.ended).toBe(true); // FIN, not a reset
  expect(idle.state.error).toBeUndefined();
  expect(await r.process.exited).toBe(0);
  expect(r.process.output()).toMatch(/closed idle client connections/);
}, 20_000);
