// WebSocket upgrade proxying through the real router to a Bun.serve WebSocket backend, and the
// upgrade's failure paths: connect timeout, retry on another endpoint, the connection cap, and an
// instance that stops reading.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import type { Server as NetServer } from "node:net";
import { freePort } from "../support/ports.ts";
import { stopAllProcesses } from "../support/processes.ts";
import { headersOf, rawBackend, startHarness, startRouter, unacceptingListener, type Harness, type RunningRouter } from "./router-harness.ts";

const CONNECT_TIMEOUT_MS = 500;
let h: Harness;
let router: RunningRouter;
let backend: ReturnType<typeof Bun.serve>;
const upgradeHeads: Record<string, string>[] = [];
const servers: NetServer[] = [];

beforeAll(async () => {
  h = await startHarness();
  router = await startRouter(h.bundle, h.nats, { SKIFF_ROUTER_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS) });
  backend = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(req, server) {
      const headers = headersOf(req);
      upgradeHeads.push(headers);
      if (server.upgrade(req, { data: { appId: req.headers.get("x-cf-applicationid") } })) return;
      return new Response("not a websocket", { status: 400 });
    },
    websocket: {
      open(ws) {
        ws.send(`welcome ${(ws.data as { appId: string }).appId}`);
      },
      message(ws, msg) {
        ws.send(typeof msg === "string" ? `echo:${msg}` : msg);
      },
    },
  });
  await h.register({ port: backend.port!, uris: ["ws.skiff.localhost"], app: "ws-app" });
  await Bun.sleep(300);
}, 60_000);

afterAll(async () => {
  await stopAllProcesses();
  backend?.stop(true);
  for (const s of servers) s.close();
  await h?.stop();
});

test("text and binary messages both ways, X-CF headers reach the backend", async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${router.port}/chat`, { headers: { host: "ws.skiff.localhost" } } as never);
  ws.binaryType = "arraybuffer";
  const got: (string | number)[] = [];
  const done = new Promise<void>((resolve, reject) => {
    ws.onmessage = (e) => {
      got.push(typeof e.data === "string" ? e.data : (e.data as ArrayBuffer).byteLength);
      if (got.length === 1) {
        ws.send("hi");
        ws.send(new Uint8Array(200_000));
      }
      if (got.length === 3) resolve();
    };
    ws.onerror = () => reject(new Error("websocket error"));
    setTimeout(() => reject(new Error(`timeout, got ${JSON.stringify(got)}`)), 5000);
  });
  await done;
  expect(got).toEqual(["welcome ws-app", "echo:hi", 200_000]);
  ws.close();
});

test("an upgrade to an unknown host gets 404", async () => {
  const res = await fetch(`http://127.0.0.1:${router.port}/`, {
    headers: { host: "nows.skiff.localhost", upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" },
  });
  expect(res.status).toBe(404);
  expect(res.headers.get("x-cf-routererror")).toBe("unknown_route");
});

const upgradeHeaders = (host: string) => ({ host, upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" });

async function register(port: number, uris: string[]): Promise<void> {
  await h.register({ port, uris, app: "ws-app" });
  await Bun.sleep(200);
}

/** Opens a WebSocket through the router; resolves with the socket and its first message. */
function openThrough(r: RunningRouter, host: string): Promise<{ ws: WebSocket; first: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${r.port}/`, { headers: { host } } as never);
    ws.onmessage = (e) => resolve({ ws, first: String(e.data) });
    ws.onerror = () => reject(new Error(`websocket to ${host} failed`));
    setTimeout(() => reject(new Error(`websocket to ${host}: no message in 5 s`)), 5000);
  });
}

test("the upgrade to the instance carries X-Vcap-Request-Id and the forwarded headers (issue 5)", async () => {
  upgradeHeads.length = 0;
  const { ws } = await openThrough(router, "ws.skiff.localhost");
  ws.close();
  const head = upgradeHeads.at(-1)!;
  expect(head["x-vcap-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
  expect(head["x-forwarded-for"]).toBe("127.0.0.1");
  expect(head["x-cf-applicationid"]).toBe("ws-app");
});

test("an instance that never accepts: 502 endpoint_failure within the connect timeout (issue 5)", async () => {
  const never = await unacceptingListener();
  try {
    await register(never.port, ["ws-never.skiff.localhost"]);
    const started = performance.now();
    const res = await fetch(`http://127.0.0.1:${router.port}/`, { headers: upgradeHeaders("ws-never.skiff.localhost") });
    const took = performance.now() - started;
    expect(res.status).toBe(502);
    expect(res.headers.get("x-cf-routererror")).toBe("endpoint_failure");
    expect(took).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_MS - 50);
    expect(took).toBeLessThan(CONNECT_TIMEOUT_MS + 1500);
  } finally {
    never.close();
  }
}, 15_000);

test("the connect is retried on another endpoint when none of the request reached the first (issue 5)", async () => {
  const never = await unacceptingListener();
  try {
    const dead = await freePort();
    await register(dead, ["ws-retry.skiff.localhost"]);
    await register(never.port, ["ws-retry.skiff.localhost"]);
    await register(backend.port!, ["ws-retry.skiff.localhost"]);
    // whichever endpoint round-robin starts at, every upgrade ends on the live one
    for (let i = 0; i < 3; i++) {
      const { ws, first } = await openThrough(router, "ws-retry.skiff.localhost");
      expect(first).toBe("welcome ws-app");
      ws.close();
    }
  } finally {
    never.close();
  }
}, 20_000);

test("a tunnel counts against the instance's connection cap while it lives (issue 5)", async () => {
  const capped = await startRouter(h.bundle, h.nats, { SKIFF_ROUTER_MAX_CONNS_PER_ENDPOINT: "1" });
  try {
    await register(backend.port!, ["ws-cap.skiff.localhost"]);
    const first = await openThrough(capped, "ws-cap.skiff.localhost");
    const refused = await fetch(`http://127.0.0.1:${capped.port}/`, { headers: upgradeHeaders("ws-cap.skiff.localhost") });
    expect(refused.status).toBe(503);
    expect(refused.headers.get("x-cf-routererror")).toBe("no_endpoints");
    const closed = new Promise((r) => (first.ws.onclose = r));
    first.ws.close();
    await closed;
    await Bun.sleep(100);
    const again = await openThrough(capped, "ws-cap.skiff.localhost");
    again.ws.close();
  } finally {
    await capped.process.stop();
  }
}, 20_000);

test("an instance that stops reading: the tunnel closes once the bytes waiting for it pass the limit (issue 5)", async () => {
  let instanceGot = 0;
  const b = await rawBackend(servers, (socket, head) => {
    const key = /sec-websocket-key: (\S+)/i.exec(head)![1]!;
    const accept = createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
    socket.removeAllListeners("data");
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.on("data", (d: Buffer) => (instanceGot += d.length));
    socket.pause(); // never reads again
  });
  await register(b.port, ["ws-stuck.skiff.localhost"]);
  const ws = new WebSocket(`ws://127.0.0.1:${router.port}/`, { headers: { host: "ws-stuck.skiff.localhost" } } as never);
  const opened = new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("websocket failed"));
  });
  const closed = new Promise<number>((resolve) => (ws.onclose = (e) => resolve(e.code)));
  await opened;
  const message = new Uint8Array(8 * 1024 * 1024);
  const total = 12; // 96 MiB offered; the router holds at most ~20 MiB for the instance
  for (let i = 0; i < total && ws.readyState === WebSocket.OPEN; i++) {
    ws.send(message);
    await Bun.sleep(50);
  }
  const code = await Promise.race([closed, Bun.sleep(10_000).then(() => -1)]);
  expect(code).toBe(1011);
  expect(instanceGot).toBeLessThan(total * message.length);
}, 30_000);

test("a client that stops reading: the instance socket is paused, so the router holds a bounded amount (issue 5)", async () => {
  const frame = Buffer.alloc(10 + 1024 * 1024);
  frame[0] = 0x82; // FIN + binary, unmasked (server to client)
  frame[1] = 127;
  frame.writeUInt32BE(0, 2);
  frame.writeUInt32BE(1024 * 1024, 6);
  const offered = 96;
  let flushed = -1;
  const b = await rawBackend(servers, (socket, head) => {
    const key = /sec-websocket-key: (\S+)/i.exec(head)![1]!;
    const accept = createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    for (let i = 0; i < offered; i++) socket.write(frame);
    setTimeout(() => {
      flushed = socket.bytesWritten - socket.writableLength;
      socket.destroy();
    }, 2000);
  });
  await register(b.port, ["ws-slow-client.skiff.localhost"]);
  const { connect } = await import("node:net");
  const client = connect(router.port, "127.0.0.1");
  client.on("error", () => {});
  client.write(`GET / HTTP/1.1\r\nHost: ws-slow-client.skiff.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  client.once("data", () => client.pause()); // reads the 101 (and whatever came with it), then nothing
  const deadline = Date.now() + 10_000;
  while (flushed < 0 && Date.now() < deadline) await Bun.sleep(50);
  client.destroy();
  expect(flushed).toBeGreaterThan(0);
  // kernel buffers on both sides hold a few tens of MiB at most; a router that buffered without
  // bound would have taken all 96
  expect(flushed).toBeLessThan((offered / 2) * frame.length);
}, 20_000);
