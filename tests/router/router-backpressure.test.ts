// Backpressure through the real router (issue 5: "bodies stream both ways with backpressure"): a slow
// reader on either side must stall the writer on the other side instead of the router buffering the
// whole body in memory, and everything must still arrive intact once the reader catches up.
//
// 256 MiB bodies: the loopback sockets on both sides can buffer a few tens of MiB in the kernel
// (tcp_rmem/tcp_wmem), so "stalled" is asserted as "less than half the body got through while the
// reader was paused"; a router that read the whole body into memory would let all of it through in
// well under the pause.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect, type Server as NetServer, type Socket } from "node:net";
import { rawBackend, startHarness, startRouter, stopSuite, waitForStatus, type Harness, type RunningRouter } from "./router-harness.ts";

const TOTAL = 256 * 1024 * 1024;
const CHUNK = 256 * 1024;
const PAUSE_MS = 1500;

let h: Harness;
let router: RunningRouter;
const servers: NetServer[] = [];

beforeAll(async () => {
  h = await startHarness();
  router = await startRouter(h.bundle, h.nats, { SKIFF_ROUTER_MAX_BODY_BYTES: String(TOTAL * 2) });
}, 60_000);

afterAll(() => stopSuite(h, servers));

/** Byte i of a body is i % 251: any lost, repeated or reordered chunk shows. */
function pattern(offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (offset + i) % 251;
  return b;
}

/** Checks bytes against the pattern as they stream by; returns the first bad offset or -1. */
function checker() {
  let offset = 0;
  let bad = -1;
  return {
    feed(d: Buffer) {
      if (bad < 0) for (let i = 0; i < d.length; i++) if (d[i] !== (offset + i) % 251) { bad = offset + i; break; }
      offset += d.length;
    },
    get offset() { return offset; },
    get bad() { return bad; },
  };
}

/** Writes `total` pattern bytes to `socket`, waiting for drain whenever it says so. */
async function pump(socket: Socket, total: number): Promise<void> {
  for (let sent = 0; sent < total; sent += CHUNK) {
    const ok = socket.write(pattern(sent, Math.min(CHUNK, total - sent)));
    if (!ok) await drained(socket);
  }
}

function drained(socket: Socket): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onDrain = () => {
      socket.off("close", onClose);
      resolve();
    };
    const onClose = () => {
      socket.off("drain", onDrain);
      reject(new Error("closed while pumping"));
    };
    socket.once("drain", onDrain);
    socket.once("close", onClose);
  });
}

async function route(host: string, port: number): Promise<void> {
  await h.register({ port, uris: [host] });
  await waitForStatus(router.url, host, 200);
}

test("a slow client stalls the backend's response; every byte arrives once it reads again", async () => {
  let backendSocket: Socket | undefined;
  const b = await rawBackend(servers, (s, head) => {
    if (!head.includes("big")) return void s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    backendSocket = s;
    s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${TOTAL}\r\n\r\n`);
    void pump(s, TOTAL).catch(() => {});
  });
  await route("slowclient.skiff.localhost", b.port);

  const client = connect(router.port, "127.0.0.1");
  const check = checker();
  let head = "";
  let headDone = false;
  const done = new Promise<void>((resolve, reject) => {
    client.on("data", (d: Buffer) => {
      if (!headDone) {
        const all = Buffer.concat([Buffer.from(head, "latin1"), d]);
        const end = all.indexOf("\r\n\r\n");
        if (end < 0) return void (head = all.toString("latin1"));
        headDone = true;
        head = all.subarray(0, end).toString("latin1");
        d = all.subarray(end + 4);
        client.pause(); // the slow client: reads nothing more for a while
      }
      check.feed(d);
      if (check.offset >= TOTAL) resolve();
    });
    client.on("error", reject);
    client.on("close", () => (check.offset >= TOTAL ? resolve() : reject(new Error(`closed after ${check.offset} body bytes`))));
  });
  client.write("GET /big HTTP/1.1\r\nHost: slowclient.skiff.localhost\r\n\r\n");

  await Bun.sleep(PAUSE_MS);
  const sentWhilePaused = backendSocket?.bytesWritten ?? 0;
  client.resume();
  await done;
  client.destroy();

  console.log(`slow client: the backend got ${(sentWhilePaused / 2 ** 20).toFixed(1)} MiB of ${TOTAL / 2 ** 20} MiB out during the ${PAUSE_MS} ms pause`);
  expect(head).toStartWith("HTTP/1.1 200");
  expect(sentWhilePaused).toBeGreaterThan(0);
  expect(sentWhilePaused).toBeLessThan(TOTAL / 2);
  expect(check.offset).toBe(TOTAL);
  expect(check.bad).toBe(-1);
}, 60_000);

test("a slow backend stalls the client's upload; every byte arrives once it reads again", async () => {
  let received = 0;
  let backendCheck = checker();
  const b = await rawBackend(servers, (s, head, rest) => {
    if (!head.startsWith("POST")) return void s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    // take the socket over: the body is read here, after a pause
    s.removeAllListeners("data");
    backendCheck = checker();
    const feed = (d: Buffer) => {
      backendCheck.feed(d);
      received += d.length;
      if (received >= TOTAL) {
        const body = `${received} ${backendCheck.bad}`;
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      }
    };
    s.pause();
    setTimeout(() => {
      if (rest.length) feed(rest);
      s.on("data", feed);
      s.resume();
    }, PAUSE_MS);
  });
  await route("slowbackend.skiff.localhost", b.port);

  const client = connect(router.port, "127.0.0.1");
  await new Promise<void>((r) => client.once("connect", () => r()));
  let answer = "";
  client.on("data", (d: Buffer) => (answer += d.toString("latin1")));
  client.on("error", () => {});
  client.write(`POST /upload HTTP/1.1\r\nHost: slowbackend.skiff.localhost\r\nContent-Length: ${TOTAL}\r\n\r\n`);
  const pumping = pump(client, TOTAL);
  await Bun.sleep(PAUSE_MS - 200); // sample before the backend starts reading
  const acceptedWhilePaused = client.bytesWritten;
  await pumping;
  const deadline = Date.now() + 30_000;
  while (!answer.includes("\r\n\r\n") || !/\r\n\r\n\d+ -?\d+$/.test(answer)) {
    if (Date.now() > deadline) break;
    await Bun.sleep(20);
  }
  client.destroy();

  console.log(`slow backend: the client got ${(acceptedWhilePaused / 2 ** 20).toFixed(1)} MiB of ${TOTAL / 2 ** 20} MiB out before the backend read`);
  expect(acceptedWhilePaused).toBeGreaterThan(0);
  expect(acceptedWhilePaused).toBeLessThan(TOTAL / 2);
  expect(answer).toStartWith("HTTP/1.1 200");
  expect(answer.slice(answer.indexOf("\r\n\r\n") + 4)).toBe(`${TOTAL} -1`);
}, 60_000);
