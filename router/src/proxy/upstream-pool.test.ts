import { afterAll, expect, test } from "bun:test";
import { createServer, type Socket } from "node:net";
import { UpstreamPool, type UpstreamConnection, type UpstreamUser } from "./upstream-pool.ts";

const sockets: Socket[] = [];
const server = createServer((s) => {
  sockets.push(s);
  s.on("data", () => s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
});
await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
const port = (server.address() as { port: number }).port;
afterAll(() => server.close());

function user(): UpstreamUser & { connected: Promise<void>; data: Promise<string> } {
  let onConnect!: () => void;
  let onData!: (s: string) => void;
  const connected = new Promise<void>((r) => (onConnect = r));
  const data = new Promise<string>((r) => (onData = r));
  return {
    connected,
    data,
    onUpstreamConnect: () => onConnect(),
    onUpstreamData: (_c: UpstreamConnection, buf: Buffer, n: number) => onData(buf.toString("latin1", 0, n)),
    onUpstreamClose: () => {},
    onUpstreamDrain: () => {},
  };
}

test("a released connection is reused; a stale one is not for unrepeatable requests", async () => {
  const pool = new UpstreamPool("127.0.0.1", port, { maxIdle: 10, idleTimeoutMs: 60_000 });
  const u1 = user();
  const c1 = pool.acquire(u1);
  await u1.connected;
  c1.writeHead("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  expect(await u1.data).toContain("200 OK");
  pool.release(c1, 1000);
  expect(pool.idleCount).toBe(1);
  const c2 = pool.acquire(user(), false, 1500, Infinity);
  expect(c2).toBe(c1);
  expect(c2.reused).toBe(true);
  pool.release(c2, 1000);
  const c3 = pool.acquire(user(), false, 5000, 1000);
  expect(c3).not.toBe(c1);
  pool.close();
  c3.destroy();
});

test("sweepIdle closes connections idle for too long", async () => {
  const pool = new UpstreamPool("127.0.0.1", port, { maxIdle: 10, idleTimeoutMs: 100 });
  const u = user();
  const c = pool.acquire(u);
  await u.connected;
  pool.release(c, 0);
  pool.sweepIdle(50);
  expect(pool.idleCount).toBe(1);
  pool.sweepIdle(200);
  expect(pool.idleCount).toBe(0);
  pool.close();
});
